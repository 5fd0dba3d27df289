package anvilreceiver

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
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/anvil/anvilcol/internal/clock/clocktest"
	"github.com/anvil/anvilcol/receiver/anvilreceiver/internal/metadata"
)

// holdT0 is the start of newTestAggregator's clock; the tests' times are
// offsets from it.
var holdT0 = time.Unix(1000, 0)

func at(d time.Duration) time.Time { return holdT0.Add(d) }

func stamp(d time.Duration) pcommon.Timestamp { return pcommon.NewTimestampFromTime(at(d)) }

func newHoldAggregator(t *testing.T, hold time.Duration, delta bool, ttl time.Duration, maxSeries int, cfgs ...MetricConfig) *aggregator {
	t.Helper()
	a := newTestAggregator(t, delta, ttl, maxSeries, cfgs...)
	a.zeroHold = hold
	return a
}

// onlyMetric returns the metric named name of md, which must hold it once.
func onlyMetric(t *testing.T, md pmetric.Metrics, name string) pmetric.Metric {
	t.Helper()
	var found []pmetric.Metric
	for _, rm := range md.ResourceMetrics().All() {
		for _, sm := range rm.ScopeMetrics().All() {
			for _, m := range sm.Metrics().All() {
				if m.Name() == name {
					found = append(found, m)
				}
			}
		}
	}
	require.Len(t, found, 1, name)
	return found[0]
}

func TestZeroHoldReportsANewCounterAtZeroUntilTheHoldEnds(t *testing.T) {
	a := newHoldAggregator(t, 20*time.Second, false, time.Hour, 100,
		MetricConfig{Name: "e.count", Type: TypeCounter, Tags: []string{"q"}})
	qa := map[string]any{"q": "a"}
	ingest(a, at(time.Second), ev("e", 0, qa), ev("e", 0, qa))

	md := a.flush(at(10*time.Second), noScope)
	p := points(md)["e.count{q=a}"]
	assert.Equal(t, int64(0), p.intValue, "first flush: the hold starts, the series is reported at 0")
	assert.Equal(t, pmetric.NumberDataPointValueTypeInt, onlyMetric(t, md, "e.count").Sum().DataPoints().At(0).ValueType())
	assert.Equal(t, stamp(time.Second), p.start, "the zero keeps the series' start time")
	assert.Equal(t, stamp(10*time.Second), p.ts)
	assert.True(t, p.monotonic)
	assert.Equal(t, pmetric.AggregationTemporalityCumulative, p.temporal)

	ingest(a, at(15*time.Second), ev("e", 0, qa))
	p = points(a.flush(at(20*time.Second), noScope))["e.count{q=a}"]
	assert.Equal(t, int64(0), p.intValue, "held until 10s + 20s")
	assert.Equal(t, stamp(time.Second), p.start)

	p = points(a.flush(at(30*time.Second), noScope))["e.count{q=a}"]
	assert.Equal(t, int64(3), p.intValue, "at the hold's end: everything recorded since creation")
	assert.Equal(t, stamp(time.Second), p.start)
	assert.Equal(t, stamp(30*time.Second), p.ts)

	// A series created once q=a is past its hold is held on its own, while
	// q=a reports its increments at once.
	qb := map[string]any{"q": "b"}
	ingest(a, at(35*time.Second), ev("e", 0, qb), ev("e", 0, qa))
	got := points(a.flush(at(40*time.Second), noScope))
	assert.Equal(t, int64(4), got["e.count{q=a}"].intValue)
	assert.Equal(t, int64(0), got["e.count{q=b}"].intValue)
	assert.Equal(t, stamp(35*time.Second), got["e.count{q=b}"].start)
	ingest(a, at(45*time.Second), ev("e", 0, qb))
	got = points(a.flush(at(50*time.Second), noScope))
	assert.Equal(t, int64(0), got["e.count{q=b}"].intValue, "held until 40s + 20s")
	got = points(a.flush(at(60*time.Second), noScope))
	assert.Equal(t, int64(2), got["e.count{q=b}"].intValue)
	assert.Equal(t, int64(4), got["e.count{q=a}"].intValue)
}

// A series created 9 s before a flush with a hold of 5 s has been held for
// 5 s since its creation at that flush, but nothing downstream has seen its
// zero yet: the hold starts there.
func TestZeroHoldStartsAtTheFirstFlushThatEmitsTheSeries(t *testing.T) {
	a := newHoldAggregator(t, 5*time.Second, false, time.Hour, 100, MetricConfig{Name: "e.count", Type: TypeCounter})
	ingest(a, at(time.Second), ev("e", 0, nil))
	assert.Equal(t, int64(0), points(a.flush(at(10*time.Second), noScope))["e.count{}"].intValue)
	assert.Equal(t, int64(1), points(a.flush(at(20*time.Second), noScope))["e.count{}"].intValue)
}

// The same on the receiver's own flush loop and clock, with zero_hold from
// the config: a 10 s flush interval, a 20 s hold and a series created 9 s
// before the first flush: 0 at that flush and the next, the count at the
// third.
func TestZeroHoldOnTheFlushLoop(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	cfg.ServerConfig.NetAddr.Endpoint = "127.0.0.1:0"
	cfg.DefaultMetrics = false
	cfg.Metrics = []MetricConfig{{Name: "anvil.x.count", Type: TypeCounter}}
	cfg.MetricsFlushInterval = 10 * time.Second
	cfg.ZeroHold = 20 * time.Second
	require.NoError(t, cfg.Validate())
	clk := clocktest.NewFake(time.Time{})
	t0 := clk.Now()
	r, err := newAnvilReceiver(cfg, receivertest.NewNopSettings(metadata.Type), clk)
	require.NoError(t, err)
	sink := new(consumertest.MetricsSink)
	r.nextMetrics = sink
	require.NoError(t, r.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { require.NoError(t, r.Shutdown(context.Background())) })
	require.Eventually(t, func() bool { _, ok := clk.NextWait(); return ok }, 5*time.Second, time.Millisecond, "the flush loop waits on the clock")

	clk.Advance(time.Second)
	url := "http://" + r.addr.String() + EventsPath
	require.Equal(t, 200, postJSON(t, url, `[{"name": "anvil.x"}, {"name": "anvil.x"}]`).code)

	var got []int64
	for i, step := range []time.Duration{9 * time.Second, 10 * time.Second, 10 * time.Second} {
		clk.Advance(step)
		require.Eventually(t, func() bool { return len(sink.AllMetrics()) == i+1 }, 5*time.Second, time.Millisecond, "flush %d", i+1)
		dp := onlyMetric(t, sink.AllMetrics()[i], "anvil.x.count").Sum().DataPoints().At(0)
		assert.Equal(t, pcommon.NewTimestampFromTime(t0.Add(time.Second)), dp.StartTimestamp())
		got = append(got, dp.IntValue())
	}
	assert.Equal(t, []int64{0, 0, 2}, got)
}

func TestZeroHoldPointShapes(t *testing.T) {
	a := newHoldAggregator(t, 15*time.Second, false, time.Hour, 100,
		MetricConfig{Name: "e.sum", Type: TypeSum, Measurement: "v", Monotonic: true},
		MetricConfig{Name: "e.hist", Type: TypeDistribution, Measurement: "v", Buckets: []float64{1, 10}},
		MetricConfig{Name: "e.expo", Type: TypeDistribution, Measurement: "v", Histogram: HistogramExponential, MaxSize: 4},
		MetricConfig{Name: "e.summary", Type: TypeSummary, Measurement: "v", Quantiles: []float64{0.5, 1}})
	ingest(a, at(time.Second), ev("e", 1, nil), ev("e", 3, nil), ev("e", 100, nil))

	for _, flushAt := range []time.Duration{10 * time.Second, 20 * time.Second} {
		md := a.flush(at(flushAt), noScope)
		require.Equal(t, 4, md.DataPointCount())

		s := onlyMetric(t, md, "e.sum").Sum().DataPoints().At(0)
		assert.Equal(t, pmetric.NumberDataPointValueTypeDouble, s.ValueType())
		assert.Zero(t, s.DoubleValue())
		assert.Equal(t, stamp(time.Second), s.StartTimestamp())
		assert.Equal(t, stamp(flushAt), s.Timestamp())

		h := onlyMetric(t, md, "e.hist").Histogram().DataPoints().At(0)
		assert.Zero(t, h.Count())
		assert.True(t, h.HasSum())
		assert.Zero(t, h.Sum())
		assert.Equal(t, []float64{1, 10}, h.ExplicitBounds().AsRaw())
		assert.Equal(t, []uint64{0, 0, 0}, h.BucketCounts().AsRaw())
		assert.False(t, h.HasMin())
		assert.False(t, h.HasMax())
		assert.Equal(t, stamp(time.Second), h.StartTimestamp())

		e := onlyMetric(t, md, "e.expo").ExponentialHistogram().DataPoints().At(0)
		assert.Zero(t, e.Count())
		assert.True(t, e.HasSum())
		assert.Zero(t, e.Sum())
		assert.Zero(t, e.ZeroCount())
		assert.Equal(t, int32(-2), e.Scale(), "the scale the recorded values have (1, 3, 100 in 4 buckets)")
		assert.Zero(t, e.Positive().BucketCounts().Len())
		assert.Zero(t, e.Negative().BucketCounts().Len())
		assert.False(t, e.HasMin())
		assert.False(t, e.HasMax())
		assert.Equal(t, stamp(time.Second), e.StartTimestamp())

		q := onlyMetric(t, md, "e.summary").Summary().DataPoints().At(0)
		assert.Zero(t, q.Count())
		assert.Zero(t, q.Sum())
		assert.Zero(t, q.QuantileValues().Len())
		assert.Equal(t, stamp(time.Second), q.StartTimestamp())

		ingest(a, at(flushAt+5*time.Second), ev("e", 5, nil))
	}

	// 10s + 15s has passed: the real values, with the values recorded during
	// the hold (1, 3, 100, 5, 5).
	md := a.flush(at(30*time.Second), noScope)
	assert.InDelta(t, 114.0, onlyMetric(t, md, "e.sum").Sum().DataPoints().At(0).DoubleValue(), 0)

	h := onlyMetric(t, md, "e.hist").Histogram().DataPoints().At(0)
	assert.Equal(t, uint64(5), h.Count())
	assert.InDelta(t, 114.0, h.Sum(), 0)
	assert.Equal(t, []uint64{1, 3, 1}, h.BucketCounts().AsRaw())
	assert.InDelta(t, 1.0, h.Min(), 0)
	assert.InDelta(t, 100.0, h.Max(), 0)
	assert.Equal(t, stamp(time.Second), h.StartTimestamp())

	e := onlyMetric(t, md, "e.expo").ExponentialHistogram().DataPoints().At(0)
	assert.Equal(t, uint64(5), e.Count())
	assert.InDelta(t, 114.0, e.Sum(), 0)
	assert.Equal(t, int32(-2), e.Scale())
	assert.Equal(t, []uint64{1, 3, 1}, e.Positive().BucketCounts().AsRaw(), "(1/16,1] (1,16] (16,256]")
	assert.InDelta(t, 100.0, e.Max(), 0)

	q := onlyMetric(t, md, "e.summary").Summary().DataPoints().At(0)
	assert.Equal(t, uint64(5), q.Count(), "the held intervals' samples stay in count and sum")
	assert.InDelta(t, 114.0, q.Sum(), 0)
	require.Equal(t, 2, q.QuantileValues().Len())
	assert.InDelta(t, 5.0, q.QuantileValues().At(1).Value(), 0, "quantiles of the last interval only (5): the held intervals' are not reported")
}

func TestZeroHoldLeavesLastValueAlone(t *testing.T) {
	a := newHoldAggregator(t, 20*time.Second, false, time.Hour, 100,
		MetricConfig{Name: "e.v", Type: TypeLastValue},
		MetricConfig{Name: "e.count", Type: TypeCounter})
	ingest(a, at(time.Second), ev("e", 42, nil))
	p := points(a.flush(at(10*time.Second), noScope))
	assert.InDelta(t, 42.0, p["e.v{}"].value, 0, "a gauge is reported as it is")
	assert.Equal(t, int64(0), p["e.count{}"].intValue, "while the counter beside it is held")
}

func TestZeroHoldHasNoEffectWithDeltaTemporality(t *testing.T) {
	a := newHoldAggregator(t, 20*time.Second, true, time.Hour, 100,
		MetricConfig{Name: "e.count", Type: TypeCounter},
		MetricConfig{Name: "e.v", Type: TypeDistribution, Buckets: []float64{1, 10}})
	ingest(a, at(time.Second), ev("e", 0.5, nil), ev("e", 5, nil))
	p := points(a.flush(at(10*time.Second), noScope))
	assert.Equal(t, int64(2), p["e.count{}"].intValue)
	assert.Equal(t, pmetric.AggregationTemporalityDelta, p["e.count{}"].temporal)
	assert.Equal(t, []uint64{1, 1, 0}, p["e.v{}"].buckets)
}

func TestZeroHoldHoldsASeriesAgainAfterSeriesTTLForgotIt(t *testing.T) {
	a := newHoldAggregator(t, 20*time.Second, false, time.Minute, 100, MetricConfig{Name: "e.count", Type: TypeCounter})
	ingest(a, at(time.Second), ev("e", 0, nil))
	var got []int64
	for _, f := range []time.Duration{10, 20, 30} {
		got = append(got, points(a.flush(at(f*time.Second), noScope))["e.count{}"].intValue)
	}
	assert.Equal(t, []int64{0, 0, 1}, got)
	assert.Equal(t, 0, a.flush(at(70*time.Second), noScope).DataPointCount(), "unseen for more than series_ttl: forgotten")

	ingest(a, at(75*time.Second), ev("e", 0, nil))
	got = got[:0]
	for _, f := range []time.Duration{80, 90, 100} {
		p := points(a.flush(at(f*time.Second), noScope))["e.count{}"]
		assert.Equal(t, stamp(75*time.Second), p.start, "a new series, a new start")
		got = append(got, p.intValue)
	}
	assert.Equal(t, []int64{0, 0, 1}, got, "the series back is held again: downstream sees a reset to 0, then its count")
}

func TestZeroHoldHoldsTheOverflowSeries(t *testing.T) {
	a := newHoldAggregator(t, 20*time.Second, false, time.Hour, 1,
		MetricConfig{Name: "e.count", Type: TypeCounter, Tags: []string{"q"}})
	ingest(a, at(time.Second), ev("e", 0, map[string]any{"q": "a"}), ev("e", 0, map[string]any{"q": "b"}),
		ev("e", 0, map[string]any{"q": "c"}))
	p := points(a.flush(at(10*time.Second), noScope))
	assert.Equal(t, int64(0), p["e.count{q=a}"].intValue)
	assert.Equal(t, int64(0), p["e.count{otel.metric.overflow=true}"].intValue)
	assert.Equal(t, stamp(time.Second), p["e.count{otel.metric.overflow=true}"].start)
	p = points(a.flush(at(30*time.Second), noScope))
	assert.Equal(t, int64(1), p["e.count{q=a}"].intValue)
	assert.Equal(t, int64(2), p["e.count{otel.metric.overflow=true}"].intValue)
}

// With zero_hold 0 (the default) a new series is reported as it is at once.
func TestZeroHoldOffReportsAtOnce(t *testing.T) {
	a := newHoldAggregator(t, 0, false, time.Hour, 100, MetricConfig{Name: "e.count", Type: TypeCounter})
	ingest(a, at(time.Second), ev("e", 0, nil))
	assert.Equal(t, int64(1), points(a.flush(at(10*time.Second), noScope))["e.count{}"].intValue)
}
