package ratelog

import (
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

func TestLogsOncePerIntervalPerKey(t *testing.T) {
	core, logs := observer.New(zap.WarnLevel)
	l := New(zap.New(core), time.Minute)
	now := time.Unix(0, 0)
	l.SetClock(func() time.Time { return now })
	for i := 0; i < 10; i++ {
		l.Warn("a", "bad a")
	}
	l.Error("b", "bad b")
	if got := logs.Len(); got != 2 {
		t.Fatalf("logged %d lines, want 2", got)
	}
	now = now.Add(61 * time.Second)
	l.Warn("a", "bad a")
	all := logs.All()
	if len(all) != 3 {
		t.Fatalf("logged %d lines, want 3", len(all))
	}
	if n := all[2].ContextMap()["suppressed_since_last"]; n != int64(9) {
		t.Fatalf("suppressed_since_last = %v, want 9", n)
	}
}
