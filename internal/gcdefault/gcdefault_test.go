package gcdefault

import (
	"os"
	"runtime/debug"
	"testing"
)

func TestApplySetsTheTargetWhenGOGCIsUnset(t *testing.T) {
	t.Setenv("GOGC", "")
	os.Unsetenv("GOGC") // t.Setenv restores the original value afterwards
	before := debug.SetGCPercent(100)
	defer debug.SetGCPercent(before)

	if !Apply(200) {
		t.Fatal("Apply did not set the target with GOGC unset")
	}
	if got := debug.SetGCPercent(100); got != 200 {
		t.Fatalf("GC target %d after Apply(200), want 200", got)
	}
}

func TestApplyLeavesAnOperatorsGOGCAlone(t *testing.T) {
	for _, v := range []string{"50", "off", ""} {
		t.Setenv("GOGC", v)
		before := debug.SetGCPercent(100)
		if Apply(200) {
			t.Errorf("GOGC=%q: Apply set the target", v)
		}
		if got := debug.SetGCPercent(before); got != 100 {
			t.Errorf("GOGC=%q: GC target changed to %d", v, got)
		}
	}
}
