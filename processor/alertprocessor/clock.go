package alertprocessor // import "github.com/anvil/anvilcol/processor/alertprocessor"

import anvilclock "github.com/anvil/anvilcol/internal/clock"

// clock is the processor's one time source (internal/clock), injected by the
// factory (the wall clock) or a test (clocktest.Fake): the engine reads Now
// for its evaluations and windows; the notifiers read Now for their retry
// deadline and Slack pacing and wait on After, so a fake clock drives retries
// and pacing without real waiting.
type clock = anvilclock.Clock

// wallClock is the real time.
type wallClock = anvilclock.Real
