package e2etest

import (
	"sync/atomic"
	"testing"
	"time"
)

func TestConsistentlyHoldsForTheWindowAndFailsAtOnce(t *testing.T) {
	var polls atomic.Int32
	start := time.Now()
	if !Consistently(t, 150*time.Millisecond, func() bool { polls.Add(1); return true }, "always true") {
		t.Fatal("Consistently failed on a condition that holds")
	}
	if d := time.Since(start); d < 150*time.Millisecond || polls.Load() < 2 {
		t.Errorf("returned after %v and %d polls, want the whole window", d, polls.Load())
	}

	ft := &fakeT{TB: t}
	polls.Store(0)
	start = time.Now()
	if Consistently(ft, 10*time.Second, func() bool { return polls.Add(1) < 3 }, "breaks on poll %d", 3) {
		t.Fatal("Consistently held on a condition that broke")
	}
	if !ft.failed || time.Since(start) > 5*time.Second || polls.Load() != 3 {
		t.Errorf("failed %v after %v and %d polls, want a failure at the third poll", ft.failed, time.Since(start), polls.Load())
	}
}

// fakeT records Errorf instead of failing the real test.
type fakeT struct {
	testing.TB
	failed bool
}

func (f *fakeT) Helper()               {}
func (f *fakeT) Errorf(string, ...any) { f.failed = true }
