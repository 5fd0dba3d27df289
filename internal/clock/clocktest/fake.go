// Package clocktest holds the fake clock.Clock of anvilcol's tests.
package clocktest // import "github.com/anvil/anvilcol/internal/clock/clocktest"

import (
	"sync"
	"testing"
	"time"

	"github.com/anvil/anvilcol/internal/clock"
)

// Fake is a clock.Clock whose time moves only by Advance, which fires the
// After channels and ticks it reaches. It is safe for concurrent use.
type Fake struct {
	mu      sync.Mutex
	t       time.Time
	waiters []waiter
	tickers []*ticker
}

type waiter struct {
	at time.Time
	c  chan time.Time
}

// Start is the time NewFake(time.Time{}) starts at.
var Start = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

// NewFake returns a Fake at t, or at Start for the zero time.
func NewFake(t time.Time) *Fake {
	if t.IsZero() {
		t = Start
	}
	return &Fake{t: t}
}

var _ clock.Clock = (*Fake)(nil)

func (c *Fake) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *Fake) After(d time.Duration) <-chan time.Time {
	ch := make(chan time.Time, 1)
	c.mu.Lock()
	defer c.mu.Unlock()
	if d <= 0 {
		ch <- c.t
		return ch
	}
	c.waiters = append(c.waiters, waiter{at: c.t.Add(d), c: ch})
	return ch
}

func (c *Fake) NewTicker(d time.Duration) clock.Ticker {
	if d <= 0 {
		panic("clocktest: non-positive interval for NewTicker")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &ticker{c: c, every: d, next: c.t.Add(d), ch: make(chan time.Time, 1)}
	c.tickers = append(c.tickers, t)
	return t
}

// Advance moves the time by d (backwards for d < 0) and fires what it
// reaches: After channels once, tickers once however many periods passed
// (a time.Ticker drops the ticks its reader misses, too).
func (c *Fake) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	kept := c.waiters[:0]
	for _, w := range c.waiters {
		if w.at.After(c.t) {
			kept = append(kept, w)
			continue
		}
		w.c <- c.t
	}
	c.waiters = kept
	for _, t := range c.tickers {
		if t.next.After(c.t) {
			continue
		}
		for !t.next.After(c.t) {
			t.next = t.next.Add(t.every)
		}
		select {
		case t.ch <- c.t:
		default:
		}
	}
}

// NextWait is the earliest time an After channel or a ticker waits for,
// if any: a test moves the clock there when the code under test waits.
func (c *Fake) NextWait() (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var at time.Time
	for _, w := range c.waiters {
		if at.IsZero() || w.at.Before(at) {
			at = w.at
		}
	}
	for _, t := range c.tickers {
		if at.IsZero() || t.next.Before(at) {
			at = t.next
		}
	}
	return at, !at.IsZero()
}

type ticker struct {
	c     *Fake
	every time.Duration
	next  time.Time
	ch    chan time.Time
}

func (t *ticker) C() <-chan time.Time { return t.ch }

func (t *ticker) Stop() {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	for i, o := range t.c.tickers {
		if o == t {
			t.c.tickers = append(t.c.tickers[:i], t.c.tickers[i+1:]...)
			return
		}
	}
}

// RunUntil moves the clock to each time something waits for until done
// holds: the code under test either works (done holds, or a new wait comes)
// or waits on the clock, so no real time passes in its waits. It fails t
// when, for 10 s of real time, nothing is done and nothing waits.
func (c *Fake) RunUntil(t testing.TB, done func() bool) {
	t.Helper()
	for !done() {
		deadline := time.Now().Add(10 * time.Second)
		at, ok := c.NextWait()
		for !ok && !done() {
			if time.Now().After(deadline) {
				t.Fatal("clocktest: neither done nor waiting on the clock for 10 s")
			}
			time.Sleep(time.Millisecond) // polling the code under test
			at, ok = c.NextWait()
		}
		if ok {
			c.Advance(at.Sub(c.Now()))
		}
	}
}
