// Package clock is the one time source of anvilcol's components: a component
// takes a Clock (Real in production, clocktest.Fake in tests) instead of
// calling time.Now, time.After or time.NewTicker, so tests move time instead
// of sleeping.
package clock // import "github.com/anvil/anvilcol/internal/clock"

import "time"

// Clock tells the time and waits on it.
type Clock interface {
	Now() time.Time
	// After is time.After on this clock: the channel receives once d has
	// passed (at once when d <= 0).
	After(d time.Duration) <-chan time.Time
	// NewTicker is time.NewTicker on this clock (d must be positive).
	NewTicker(d time.Duration) Ticker
}

// Ticker is a time.Ticker of a Clock.
type Ticker interface {
	// C is the channel the ticks are delivered on; like time.Ticker's, it
	// holds one tick and drops ticks a slow reader misses.
	C() <-chan time.Time
	Stop()
}

// Real is the wall clock. Its zero value is ready to use.
type Real struct{}

func (Real) Now() time.Time                         { return time.Now() }
func (Real) After(d time.Duration) <-chan time.Time { return time.After(d) }
func (Real) NewTicker(d time.Duration) Ticker       { return realTicker{time.NewTicker(d)} }

type realTicker struct{ t *time.Ticker }

func (t realTicker) C() <-chan time.Time { return t.t.C }
func (t realTicker) Stop()               { t.t.Stop() }
