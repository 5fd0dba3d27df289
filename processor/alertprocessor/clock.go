package alertprocessor // import "github.com/anvil/anvilcol/processor/alertprocessor"

import "time"

// clock is the processor's one time source, injected by the factory (the
// wall clock) or a test (a fake one): the engine reads Now for its
// evaluations and windows; the notifiers read Now for their retry deadline
// and Slack pacing and wait on After, so a fake clock drives retries and
// pacing without real waiting.
type clock interface {
	Now() time.Time
	// After is time.After on this clock: the channel receives once d has
	// passed (at once when d <= 0).
	After(d time.Duration) <-chan time.Time
}

// wallClock is the real time.
type wallClock struct{}

func (wallClock) Now() time.Time                         { return time.Now() }
func (wallClock) After(d time.Duration) <-chan time.Time { return time.After(d) }
