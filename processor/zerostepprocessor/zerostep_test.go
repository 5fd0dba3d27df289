package zerostepprocessor

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.uber.org/zap"

	"github.com/anvil/anvilcol/internal/clock/clocktest"
)

var t0 = time.Unix(1_700_000_000, 0)

func ts(t time.Time) pcommon.Timestamp { return pcommon.NewTimestampFromTime(t) }

// counter is one cumulative monotonic int sum point of queue q.
func counter(q string, start, at time.Time, v int64) pmetric.Metrics {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.instance.id", "node-1")
	m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName("anvil.assignment.timed_out.count")
	s := m.SetEmptySum()
	s.SetIsMonotonic(true)
	s.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	dp := s.DataPoints().AppendEmpty()
	dp.Attributes().PutStr("queue_id", q)
	dp.SetStartTimestamp(ts(start))
	dp.SetTimestamp(ts(at))
	dp.SetIntValue(v)
	return md
}

func intValue(t *testing.T, md pmetric.Metrics) int64 {
	t.Helper()
	require.Equal(t, 1, md.DataPointCount())
	return md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).Sum().DataPoints().At(0).IntValue()
}

type rig struct {
	z    *zeroStep
	clk  *clocktest.Fake
	sink *consumertest.MetricsSink
}

func newRig(t *testing.T, hold time.Duration) *rig {
	t.Helper()
	r := newManualRig(t, hold)
	require.NoError(t, r.z.start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { require.NoError(t, r.z.shutdown(context.Background())) })
	require.Eventually(t, func() bool { _, ok := r.clk.NextWait(); return ok }, 5*time.Second, time.Millisecond, "the release loop waits on the clock")
	return r
}

// newManualRig is a rig without the release loop: the test calls release
// itself, so nothing races its feeds.
func newManualRig(t *testing.T, hold time.Duration) *rig {
	t.Helper()
	cfg := createDefaultConfig().(*Config)
	cfg.Hold = hold
	require.NoError(t, cfg.Validate())
	r := &rig{clk: clocktest.NewFake(t0), sink: new(consumertest.MetricsSink)}
	r.z = newZeroStep(cfg, r.sink, zap.NewNop(), r.clk)
	return r
}

// feed processes md at the rig's current time and returns what passes on.
func (r *rig) feed(t *testing.T, md pmetric.Metrics) pmetric.Metrics {
	t.Helper()
	out, err := r.z.process(context.Background(), md)
	require.NoError(t, err)
	return out
}

// A new series (its start time just before its first point) is shown at 0,
// with its start time, until the hold has passed since its first point here;
// then its real value passes. A series that had counted for long before this
// processor saw it (moved here from another replica) passes at once.
func TestNewSeriesIsShownAtZeroThenItsValue(t *testing.T) {
	r := newRig(t, 35*time.Second)
	began := t0.Add(-time.Second)
	var got []int64
	for i, v := range []int64{3, 5, 5, 5, 7} {
		r.clk.Advance(time.Duration(min(i, 1)) * 10 * time.Second)
		out := r.feed(t, counter("q-new", began, r.clk.Now(), v))
		got = append(got, intValue(t, out))
		dp := out.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).Sum().DataPoints().At(0)
		assert.Equal(t, ts(began), dp.StartTimestamp(), "the real start time")
	}
	assert.Equal(t, []int64{0, 0, 0, 0, 7}, got, "points at 0, 10, 20, 30 s are held; 40 s is past 35 s")

	moved := r.feed(t, counter("q-moved", t0.Add(-10*time.Minute), r.clk.Now(), 40))
	assert.Equal(t, int64(40), intValue(t, moved), "history is not shown as new")
}

// A restarted writer (a new start time) is held again: a scraper sees the
// drop to 0, a counter reset, then what the new run counts.
func TestRestartedSeriesIsHeldAgain(t *testing.T) {
	r := newRig(t, 20*time.Second)
	first := t0.Add(-time.Second)
	r.feed(t, counter("q", first, r.clk.Now(), 1))
	r.clk.Advance(30 * time.Second)
	assert.Equal(t, int64(9), intValue(t, r.feed(t, counter("q", first, r.clk.Now(), 9))))
	restarted := r.clk.Now()
	r.clk.Advance(time.Second)
	assert.Equal(t, int64(0), intValue(t, r.feed(t, counter("q", restarted, r.clk.Now(), 2))))
	r.clk.Advance(20 * time.Second)
	assert.Equal(t, int64(4), intValue(t, r.feed(t, counter("q", restarted, r.clk.Now(), 4))))
}

// A restarted agent replays points of its earlier run from its persistent
// queue after the new run's first points: they pass as they are and leave the
// new run's hold alone (else every replayed point would start a new run again
// and a scraper would count the new run twice).
func TestPointsOfAnEarlierRunPassWithoutRestartingTheHold(t *testing.T) {
	r := newRig(t, 20*time.Second)
	old := t0.Add(-time.Minute)
	r.feed(t, counter("q", old, r.clk.Now(), 1))
	r.clk.Advance(30 * time.Second)
	assert.Equal(t, int64(14), intValue(t, r.feed(t, counter("q", old, r.clk.Now(), 14))))
	restarted := r.clk.Now()
	r.clk.Advance(time.Second)
	assert.Equal(t, int64(0), intValue(t, r.feed(t, counter("q", restarted, r.clk.Now(), 3))), "the new run is held")
	assert.Equal(t, int64(14), intValue(t, r.feed(t, counter("q", old, restarted.Add(-time.Second), 14))), "the replayed point passes")
	r.clk.Advance(20 * time.Second)
	assert.Equal(t, int64(7), intValue(t, r.feed(t, counter("q", restarted, r.clk.Now(), 7))), "the new run's hold ended on time")
}

// A held series that gets no further point (a StatsD counter incremented
// once) still gets its real value, when the hold ends.
func TestHeldValueIsSentWhenTheHoldEndsWithoutAnotherPoint(t *testing.T) {
	r := newRig(t, 20*time.Second)
	out := r.feed(t, counter("q-once", t0.Add(-time.Second), r.clk.Now(), 3))
	assert.Equal(t, int64(0), intValue(t, out))
	for r.clk.Now().Before(t0.Add(18 * time.Second)) {
		r.clk.Advance(r.z.tick())
	}
	r.z.release() // at 18 s, as the loop would
	assert.Empty(t, r.sink.AllMetrics(), "not before the hold ended")
	r.clk.Advance(2 * time.Second)
	require.Eventually(t, func() bool { return len(r.sink.AllMetrics()) == 1 }, 5*time.Second, time.Millisecond, "the release loop sent the real point")
	assert.Equal(t, int64(3), intValue(t, r.sink.AllMetrics()[0]))
}

// A held series whose real value passed after the hold, before a release
// ran, leaves nothing to release. (Without the loop: with it, a tick at the
// hold's end may release the held 1 before the 2 passes, which is right too.)
func TestPassedValueLeavesNothingToRelease(t *testing.T) {
	r := newManualRig(t, 20*time.Second)
	assert.Equal(t, int64(0), intValue(t, r.feed(t, counter("q-busy", t0.Add(-time.Second), r.clk.Now(), 1))))
	r.clk.Advance(25 * time.Second)
	assert.Equal(t, int64(2), intValue(t, r.feed(t, counter("q-busy", t0.Add(-time.Second), r.clk.Now(), 2))))
	r.z.release()
	assert.Empty(t, r.sink.AllMetrics(), "nothing to release")

	// The same manual release does send a held value that nothing replaced.
	r.feed(t, counter("q-once", r.clk.Now().Add(-time.Second), r.clk.Now(), 5))
	r.clk.Advance(25 * time.Second)
	r.z.release()
	require.Len(t, r.sink.AllMetrics(), 1)
	assert.Equal(t, int64(5), intValue(t, r.sink.AllMetrics()[0]))
}

// Every cumulative shape keeps its shape at zero; gauges, non-monotonic and
// delta sums pass untouched.
func TestZeroShapes(t *testing.T) {
	r := newRig(t, time.Minute)
	start, now := ts(t0.Add(-time.Second)), ts(t0)
	md := pmetric.NewMetrics()
	ms := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics()

	h := ms.AppendEmpty()
	h.SetName("h")
	hh := h.SetEmptyHistogram()
	hh.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	hp := hh.DataPoints().AppendEmpty()
	hp.SetStartTimestamp(start)
	hp.SetTimestamp(now)
	hp.SetCount(3)
	hp.SetSum(104)
	hp.SetMin(1)
	hp.SetMax(100)
	hp.ExplicitBounds().FromRaw([]float64{1, 10})
	hp.BucketCounts().FromRaw([]uint64{1, 1, 1})

	e := ms.AppendEmpty()
	e.SetName("e")
	ee := e.SetEmptyExponentialHistogram()
	ee.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	ep := ee.DataPoints().AppendEmpty()
	ep.SetStartTimestamp(start)
	ep.SetTimestamp(now)
	ep.SetScale(3)
	ep.SetCount(4)
	ep.SetSum(9)
	ep.SetZeroCount(1)
	ep.Positive().SetOffset(2)
	ep.Positive().BucketCounts().FromRaw([]uint64{1, 2})

	s := ms.AppendEmpty()
	s.SetName("s")
	sp := s.SetEmptySummary().DataPoints().AppendEmpty()
	sp.SetStartTimestamp(start)
	sp.SetTimestamp(now)
	sp.SetCount(2)
	sp.SetSum(0.8)
	q := sp.QuantileValues().AppendEmpty()
	q.SetQuantile(0.5)
	q.SetValue(0.4)

	g := ms.AppendEmpty()
	g.SetName("g")
	g.SetEmptyGauge().DataPoints().AppendEmpty().SetDoubleValue(7)

	u := ms.AppendEmpty()
	u.SetName("updown")
	us := u.SetEmptySum()
	us.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	up := us.DataPoints().AppendEmpty()
	up.SetStartTimestamp(start)
	up.SetDoubleValue(5)

	d := ms.AppendEmpty()
	d.SetName("delta")
	ds := d.SetEmptySum()
	ds.SetIsMonotonic(true)
	ds.SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
	dd := ds.DataPoints().AppendEmpty()
	dd.SetStartTimestamp(start)
	dd.SetDoubleValue(6)

	r.feed(t, md)
	assert.Zero(t, hp.Count())
	assert.Zero(t, hp.Sum())
	assert.False(t, hp.HasMin())
	assert.False(t, hp.HasMax())
	assert.Equal(t, []float64{1, 10}, hp.ExplicitBounds().AsRaw())
	assert.Equal(t, []uint64{0, 0, 0}, hp.BucketCounts().AsRaw())
	assert.Equal(t, start, hp.StartTimestamp())

	assert.Zero(t, ep.Count())
	assert.Zero(t, ep.Sum())
	assert.Zero(t, ep.ZeroCount())
	assert.Equal(t, int32(3), ep.Scale())
	assert.Zero(t, ep.Positive().BucketCounts().Len())

	assert.Zero(t, sp.Count())
	assert.Zero(t, sp.Sum())
	assert.Zero(t, sp.QuantileValues().Len())

	assert.Equal(t, 7.0, g.Gauge().DataPoints().At(0).DoubleValue())
	assert.Equal(t, 5.0, up.DoubleValue())
	assert.Equal(t, 6.0, dd.DoubleValue())
}

// Beyond max_series a new series passes without a zero step (bounded memory).
func TestMaxSeries(t *testing.T) {
	r := newRig(t, time.Minute)
	r.z.cfg.MaxSeries = 1
	began := t0.Add(-time.Second)
	assert.Equal(t, int64(0), intValue(t, r.feed(t, counter("a", began, r.clk.Now(), 1))))
	assert.Equal(t, int64(1), intValue(t, r.feed(t, counter("b", began, r.clk.Now(), 1))), "over the cap: passes")
	assert.Len(t, r.z.series, 1)
}

// Series unseen for series_ttl are forgotten.
func TestSeriesTTL(t *testing.T) {
	r := newRig(t, 20*time.Second)
	r.z.cfg.SeriesTTL = time.Minute
	r.feed(t, counter("a", t0.Add(-time.Second), r.clk.Now(), 1))
	r.clk.RunUntil(t, func() bool { return r.clk.Now().Sub(t0) > 2*time.Minute })
	require.Eventually(t, func() bool {
		r.z.mu.Lock()
		defer r.z.mu.Unlock()
		return len(r.z.series) == 0
	}, 5*time.Second, time.Millisecond)
}
