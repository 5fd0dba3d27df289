// Package gcdefault sets a distribution's default Go GC target (GOGC) when the
// environment does not set one. The agent distribution calls it from
// cmd/anvilcol-agent/gc.go; README "Whole agent" has the measurements.
package gcdefault // import "github.com/anvil/anvilcol/internal/gcdefault"

import (
	"os"
	"runtime/debug"
)

// Apply sets the GC target to percent unless GOGC is in the environment (any
// value, "off" included, is the operator's and is left to the runtime). It
// reports whether it set the target.
func Apply(percent int) bool {
	if _, set := os.LookupEnv("GOGC"); set {
		return false
	}
	debug.SetGCPercent(percent)
	return true
}
