// Not generated: the builder leaves this file alone (make generate rewrites
// only its own files).

package main

import "github.com/anvil/anvilcol/internal/gcdefault"

// agentGOGC is the agent distribution's default GC target: it halves the
// collections of the default 100, which cost an agent about a quarter of its
// CPU at 10k events/s, for ~30 MiB more heap (README, "Whole agent"). GOGC in
// the environment overrides it; GOMEMLIMIT works as usual.
const agentGOGC = 200

func init() { gcdefault.Apply(agentGOGC) }
