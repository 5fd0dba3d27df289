package cardinalityguardprocessor

import (
	"runtime"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestMemoryBoundedWithAMillionLabelers lets 1M distinct labeler_id values
// through (an allowlist keeps labeler_id) into one cumulative counter: the
// output stays at cap+1 series and the guard's state stays under 50 MB.
// Heavy: skipped under -short and -race.
func TestMemoryBoundedWithAMillionLabelers(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("memory measurement: run without -short and -race")
	}
	for _, cumulative := range []bool{true, false} {
		t.Run(map[bool]string{false: "delta", true: "cumulative"}[cumulative], func(t *testing.T) {
			const (
				labelers = 1_000_000
				perBatch = 10_000
			)
			h := newHarness(t, func(c *Config) {
				c.DropAttributes = []string{"sample_id", "assignment_id"}
				c.Metrics = map[string]MetricConfig{submits: {AllowedAttributes: []string{"queue_id", "labeler_id"}}}
			})
			before := heapInUse()
			for b := 0; b < labelers/perBatch; b++ {
				md, ms := newBatch()
				s := appendMetric(ms, submits).SetEmptySum()
				s.SetIsMonotonic(true)
				s.SetAggregationTemporality(temporality(cumulative))
				dps := s.DataPoints()
				dps.EnsureCapacity(perBatch)
				for i := 0; i < perBatch; i++ {
					dp := dps.AppendEmpty()
					dp.Attributes().PutStr("queue_id", "q"+strconv.Itoa(i%7))
					dp.Attributes().PutStr("labeler_id", "labeler-"+strconv.Itoa(b*perBatch+i))
					dp.SetStartTimestamp(sec(1))
					dp.SetTimestamp(sec(10))
					dp.SetIntValue(1)
				}
				out := h.process(t, md)
				n := out.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).Sum().DataPoints().Len()
				require.LessOrEqual(t, n, 2001, "output series <= cap+1")
			}
			after := heapInUse()
			h.g.mu.Lock()
			var active int
			for _, st := range h.g.streams {
				active += st.activeSeries()
			}
			h.g.mu.Unlock()
			state := float64(after-before) / (1 << 20)
			t.Logf("%s: %d distinct labeler_id, state %.1f MiB (%.0f B per input series), %d output series", t.Name(), labelers, state, float64(after-before)/labelers, active)
			assert.Equal(t, 2001, active)
			assert.Less(t, state, 50.0, "state must stay under 50 MB")
			runtime.KeepAlive(h.g)
		})
	}
}

func heapInUse() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}
