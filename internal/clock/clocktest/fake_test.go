package clocktest

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func received(c <-chan time.Time) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

func TestFakeMovesOnlyByAdvance(t *testing.T) {
	c := NewFake(time.Time{})
	assert.Equal(t, Start, c.Now())
	c.Advance(time.Second)
	assert.Equal(t, Start.Add(time.Second), c.Now())
	c.Advance(-time.Minute)
	assert.Equal(t, Start.Add(-59*time.Second), c.Now(), "time may go backwards")
}

func TestFakeAfterFiresWhenReached(t *testing.T) {
	c := NewFake(time.Time{})
	assert.True(t, received(c.After(0)), "d <= 0 fires at once")
	ch := c.After(2 * time.Second)
	at, ok := c.NextWait()
	assert.True(t, ok)
	assert.Equal(t, Start.Add(2*time.Second), at)
	c.Advance(time.Second)
	assert.False(t, received(ch))
	c.Advance(time.Second)
	assert.True(t, received(ch))
	_, ok = c.NextWait()
	assert.False(t, ok, "a fired After waits no more")
}

func TestFakeTickerDropsMissedTicks(t *testing.T) {
	c := NewFake(time.Time{})
	tk := c.NewTicker(10 * time.Second)
	c.Advance(9 * time.Second)
	assert.False(t, received(tk.C()))
	c.Advance(time.Second)
	assert.True(t, received(tk.C()))
	c.Advance(35 * time.Second) // three periods: one tick
	assert.True(t, received(tk.C()))
	assert.False(t, received(tk.C()))
	at, _ := c.NextWait()
	assert.Equal(t, Start.Add(50*time.Second), at)
	tk.Stop()
	c.Advance(time.Hour)
	assert.False(t, received(tk.C()), "a stopped ticker ticks no more")
}

// RunUntil advances to each wait the code under test makes, so a goroutine
// that waits twice for an hour finishes without real time passing.
func TestRunUntilAdvancesToEachWait(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := NewFake(start)
	var done atomic.Bool
	go func() {
		<-c.After(time.Hour)
		<-c.After(time.Hour)
		done.Store(true)
	}()
	c.RunUntil(t, done.Load)
	if got := c.Now().Sub(start); got != 2*time.Hour {
		t.Fatalf("clock moved %v, want 2h", got)
	}
}
