package cardinalityguardprocessor

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"

	"github.com/anvil/anvilcol/processor/cardinalityguardprocessor/internal/metadatatest"
)

const submits = "anvil.label.submit.count"

func TestDropsADR008AttributesAndMergesDeltaSums(t *testing.T) {
	h := newHarness(t, nil)
	out := h.process(t, sumBatch(submits, false,
		pt{attrs: labels("queue_id", "q1", "labeler_id", "a", "sample_id", "s1"), v: 2, start: 1, ts: 10},
		pt{attrs: labels("queue_id", "q1", "labeler_id", "b", "assignment_id", "x"), v: 3, start: 5, ts: 12},
		pt{attrs: labels("queue_id", "q2", "labeler_id", "a"), v: 7, start: 0, ts: 10},
	))
	assert.Equal(t, map[string]float64{"queue_id=q1": 5, "queue_id=q2": 7}, numbers(t, out)[submits])
	dp := only(t, out).Sum().DataPoints().At(0)
	assert.Equal(t, pmetric.NumberDataPointValueTypeInt, dp.ValueType(), "an int sum stays int")
	assert.Equal(t, sec(1), dp.StartTimestamp(), "merged delta starts at the earliest start")
	assert.Equal(t, sec(12), dp.Timestamp(), "merged delta ends at the latest time")
	// Delta: the next batch carries only its own points.
	out = h.process(t, sumBatch(submits, false,
		pt{attrs: labels("queue_id", "q1", "labeler_id", "c"), v: 1, start: 12, ts: 20}))
	assert.Equal(t, map[string]float64{"queue_id=q1": 1}, numbers(t, out)[submits])
}

func TestCumulativeSumIsSumOfLatestInputValues(t *testing.T) {
	h := newHarness(t, nil)
	a := labels("queue_id", "q1", "labeler_id", "a")
	b := labels("queue_id", "q1", "labeler_id", "b")
	out := h.process(t, sumBatch(submits, true, pt{attrs: a, v: 10, start: 1, ts: 10}, pt{attrs: b, v: 5, start: 2, ts: 10}))
	assert.Equal(t, map[string]float64{"queue_id=q1": 15}, numbers(t, out)[submits])
	dp := only(t, out).Sum().DataPoints().At(0)
	assert.Equal(t, sec(1), dp.StartTimestamp(), "the output keeps the start time it was created with")

	// Only a reports: the output still includes b's latest value.
	out = h.process(t, sumBatch(submits, true, pt{attrs: a, v: 12, start: 1, ts: 20}))
	assert.Equal(t, map[string]float64{"queue_id=q1": 17}, numbers(t, out)[submits])

	// A new input joins with its own history: added, never a reset.
	c := labels("queue_id", "q1", "labeler_id", "c")
	out = h.process(t, sumBatch(submits, true, pt{attrs: c, v: 100, start: 3, ts: 30}))
	assert.Equal(t, map[string]float64{"queue_id=q1": 117}, numbers(t, out)[submits])
	assert.Equal(t, sec(1), only(t, out).Sum().DataPoints().At(0).StartTimestamp())
}

func TestCumulativeInputResetIsNotAnOutputReset(t *testing.T) {
	h := newHarness(t, nil)
	a := labels("queue_id", "q1", "labeler_id", "a")
	b := labels("queue_id", "q1", "labeler_id", "b")
	h.process(t, sumBatch(submits, true, pt{attrs: a, v: 10, start: 1, ts: 10}, pt{attrs: b, v: 5, start: 1, ts: 10}))
	// a restarts (value drops, new start time): its new count adds on top.
	out := h.process(t, sumBatch(submits, true, pt{attrs: a, v: 2, start: 15, ts: 20}))
	assert.Equal(t, map[string]float64{"queue_id=q1": 17}, numbers(t, out)[submits])
	// a restarts again with the same start time unknown to us but a lower value.
	out = h.process(t, sumBatch(submits, true, pt{attrs: a, v: 1, start: 15, ts: 30}, pt{attrs: b, v: 6, start: 1, ts: 30}))
	assert.Equal(t, map[string]float64{"queue_id=q1": 19}, numbers(t, out)[submits])
	dp := only(t, out).Sum().DataPoints().At(0)
	assert.Equal(t, sec(1), dp.StartTimestamp(), "the output's start time never moves")
}

func TestCumulativeNonMonotonicSumTracksLevels(t *testing.T) {
	h := newHarness(t, nil)
	md, ms := newBatch()
	a := labels("queue_id", "q1", "labeler_id", "a")
	b := labels("queue_id", "q1", "labeler_id", "b")
	addSum(ms, "anvil.queue.depth", true, false, true, pt{attrs: a, v: 10, start: 1, ts: 10}, pt{attrs: b, v: 4, start: 1, ts: 10})
	assert.Equal(t, map[string]float64{"queue_id=q1": 14}, numbers(t, h.process(t, md))["anvil.queue.depth"])
	md, ms = newBatch()
	addSum(ms, "anvil.queue.depth", true, false, true, pt{attrs: a, v: 3, start: 1, ts: 20})
	out := h.process(t, md)
	assert.Equal(t, map[string]float64{"queue_id=q1": 7}, numbers(t, out)["anvil.queue.depth"], "an up-down counter's output is the sum of current levels")
	assert.Equal(t, pmetric.NumberDataPointValueTypeDouble, only(t, out).Sum().DataPoints().At(0).ValueType())
}

func TestGaugeKeepsLatestPoint(t *testing.T) {
	h := newHarness(t, nil)
	md, ms := newBatch()
	g := appendMetric(ms, "anvil.export.progress_pct").SetEmptyGauge()
	for i, p := range []pt{
		{attrs: labels("format", "csv", "labeler_id", "a"), v: 40, ts: 20},
		{attrs: labels("format", "csv", "labeler_id", "b"), v: 70, ts: 30},
		{attrs: labels("format", "csv", "labeler_id", "c"), v: 10, ts: 25},
	} {
		dp := g.DataPoints().AppendEmpty()
		putAttrs(dp.Attributes(), p.attrs)
		dp.SetTimestamp(sec(p.ts))
		dp.SetDoubleValue(p.v)
		_ = i
	}
	out := h.process(t, md)
	assert.Equal(t, map[string]float64{"format=csv": 70}, numbers(t, out)["anvil.export.progress_pct"])
	assert.Equal(t, sec(30), only(t, out).Gauge().DataPoints().At(0).Timestamp())
}

func addHistogram(ms pmetric.MetricSlice, name string, cumulative bool, bounds []float64, pts ...histPt) {
	hg := appendMetric(ms, name).SetEmptyHistogram()
	hg.SetAggregationTemporality(temporality(cumulative))
	for _, p := range pts {
		dp := hg.DataPoints().AppendEmpty()
		stamp(dp, p.attrs, p.start, p.ts)
		b := bounds
		if p.bounds != nil {
			b = p.bounds
		}
		dp.ExplicitBounds().FromRaw(b)
		dp.BucketCounts().FromRaw(p.buckets)
		var n uint64
		for _, c := range p.buckets {
			n += c
		}
		dp.SetCount(n)
		dp.SetSum(p.sum)
		dp.SetMin(p.min)
		dp.SetMax(p.max)
	}
}

type histPt struct {
	attrs     map[string]string
	buckets   []uint64
	sum       float64
	min, max  float64
	start, ts int64
	bounds    []float64
}

func TestHistogramsMergeCountsBucketsSumMinMax(t *testing.T) {
	for _, cumulative := range []bool{false, true} {
		t.Run(map[bool]string{false: "delta", true: "cumulative"}[cumulative], func(t *testing.T) {
			h := newHarness(t, nil)
			bounds := []float64{10, 100}
			md, ms := newBatch()
			addHistogram(ms, "anvil.label.submit.duration", cumulative, bounds,
				histPt{attrs: labels("queue_id", "q1", "labeler_id", "a"), buckets: []uint64{1, 2, 0}, sum: 60, min: 5, max: 50, start: 1, ts: 10},
				histPt{attrs: labels("queue_id", "q1", "labeler_id", "b"), buckets: []uint64{0, 1, 3}, sum: 900, min: 20, max: 400, start: 1, ts: 11},
			)
			out := h.process(t, md)
			dp := only(t, out).Histogram().DataPoints()
			require.Equal(t, 1, dp.Len())
			p := dp.At(0)
			assert.Equal(t, "queue_id=q1", attrKey(p.Attributes()))
			assert.Equal(t, uint64(7), p.Count())
			assert.Equal(t, []uint64{1, 3, 3}, p.BucketCounts().AsRaw())
			assert.Equal(t, bounds, p.ExplicitBounds().AsRaw())
			assert.InDelta(t, 960, p.Sum(), 1e-9)
			assert.Equal(t, 5.0, p.Min())
			assert.Equal(t, 400.0, p.Max())

			// Second batch: only a reports.
			md, ms = newBatch()
			next := histPt{attrs: labels("queue_id", "q1", "labeler_id", "a"), buckets: []uint64{1, 0, 0}, sum: 3, min: 3, max: 3, start: 10, ts: 20}
			if cumulative {
				next = histPt{attrs: labels("queue_id", "q1", "labeler_id", "a"), buckets: []uint64{2, 2, 0}, sum: 63, min: 3, max: 50, start: 1, ts: 20}
			}
			addHistogram(ms, "anvil.label.submit.duration", cumulative, bounds, next)
			p = only(t, h.process(t, md)).Histogram().DataPoints().At(0)
			if cumulative {
				assert.Equal(t, uint64(8), p.Count(), "a's latest (4) + b's latest (4)")
				assert.Equal(t, []uint64{2, 3, 3}, p.BucketCounts().AsRaw())
				assert.InDelta(t, 963, p.Sum(), 1e-9)
				assert.Equal(t, 3.0, p.Min())
				assert.Equal(t, sec(1), p.StartTimestamp())
			} else {
				assert.Equal(t, uint64(1), p.Count())
				assert.Equal(t, []uint64{1, 0, 0}, p.BucketCounts().AsRaw())
			}
		})
	}
}

func TestHistogramWithOtherBoundsIsCountedAndKeptAsItsOwnSeries(t *testing.T) {
	for _, cumulative := range []bool{false, true} {
		t.Run(map[bool]string{false: "delta", true: "cumulative"}[cumulative], func(t *testing.T) {
			h := newHarness(t, nil)
			md, ms := newBatch()
			addHistogram(ms, "anvil.label.submit.duration", cumulative, []float64{10, 100},
				histPt{attrs: labels("queue_id", "q1", "labeler_id", "a"), buckets: []uint64{1, 0, 0}, sum: 1, start: 1, ts: 10},
				histPt{attrs: labels("queue_id", "q1", "labeler_id", "b"), buckets: []uint64{0, 2}, sum: 3, start: 1, ts: 10, bounds: []float64{50}},
			)
			dps := only(t, h.process(t, md)).Histogram().DataPoints()
			require.Equal(t, 2, dps.Len(), "the point with other bounds is not merged")
			assert.Equal(t, "queue_id=q1", attrKey(dps.At(0).Attributes()))
			assert.Equal(t, "labeler_id=b,queue_id=q1", attrKey(dps.At(1).Attributes()), "kept with its original attributes")
			assert.Equal(t, []uint64{0, 2}, dps.At(1).BucketCounts().AsRaw())
			metadatatest.AssertEqualCardinalityGuardMergeErrors(t, h.tel, []metricdata.DataPoint[int64]{{Value: 1}}, metricdatatest.IgnoreTimestamp())
		})
	}
}

func addExpHistogram(ms pmetric.MetricSlice, name string, cumulative bool, pts ...expPt) {
	eh := appendMetric(ms, name).SetEmptyExponentialHistogram()
	eh.SetAggregationTemporality(temporality(cumulative))
	for _, p := range pts {
		dp := eh.DataPoints().AppendEmpty()
		stamp(dp, p.attrs, p.start, p.ts)
		dp.SetScale(p.scale)
		dp.Positive().SetOffset(p.offset)
		dp.Positive().BucketCounts().FromRaw(p.pos)
		dp.SetZeroCount(p.zero)
		n := p.zero
		for _, c := range p.pos {
			n += c
		}
		dp.SetCount(n)
		dp.SetSum(p.sum)
	}
}

type expPt struct {
	attrs     map[string]string
	scale     int32
	offset    int32
	pos       []uint64
	zero      uint64
	sum       float64
	start, ts int64
}

func TestExponentialHistogramsMergeAtCommonScale(t *testing.T) {
	for _, cumulative := range []bool{false, true} {
		t.Run(map[bool]string{false: "delta", true: "cumulative"}[cumulative], func(t *testing.T) {
			h := newHarness(t, nil)
			md, ms := newBatch()
			// a at scale 1: buckets 4..7 (base sqrt2); b at scale 0: buckets 2..3.
			addExpHistogram(ms, "anvil.agreement.compute.duration", cumulative,
				expPt{attrs: labels("dimension", "d", "sample_id", "1"), scale: 1, offset: 4, pos: []uint64{1, 2, 3, 4}, zero: 1, sum: 50, start: 1, ts: 10},
				expPt{attrs: labels("dimension", "d", "sample_id", "2"), scale: 0, offset: 2, pos: []uint64{5, 6}, sum: 70, start: 1, ts: 10},
			)
			p := only(t, h.process(t, md)).ExponentialHistogram().DataPoints().At(0)
			assert.Equal(t, int32(0), p.Scale(), "merged at the lower scale")
			// a downscaled: index 4,5 -> 2; 6,7 -> 3 => [3, 7]; plus b [5, 6] => [8, 13]
			assert.Equal(t, int32(2), p.Positive().Offset())
			assert.Equal(t, []uint64{8, 13}, p.Positive().BucketCounts().AsRaw())
			assert.Equal(t, uint64(22), p.Count())
			assert.Equal(t, uint64(1), p.ZeroCount())
			assert.InDelta(t, 120, p.Sum(), 1e-9)

			md, ms = newBatch()
			next := expPt{attrs: labels("dimension", "d", "sample_id", "2"), scale: 0, offset: 3, pos: []uint64{1}, sum: 5, start: 10, ts: 20}
			if cumulative {
				next = expPt{attrs: labels("dimension", "d", "sample_id", "2"), scale: 0, offset: 2, pos: []uint64{5, 7}, sum: 75, start: 1, ts: 20}
			}
			addExpHistogram(ms, "anvil.agreement.compute.duration", cumulative, next)
			p = only(t, h.process(t, md)).ExponentialHistogram().DataPoints().At(0)
			if cumulative {
				assert.Equal(t, []uint64{8, 14}, p.Positive().BucketCounts().AsRaw())
				assert.Equal(t, uint64(23), p.Count())
				assert.InDelta(t, 125, p.Sum(), 1e-9)
			} else {
				assert.Equal(t, int32(3), p.Positive().Offset())
				assert.Equal(t, []uint64{1}, p.Positive().BucketCounts().AsRaw())
				assert.Equal(t, uint64(1), p.Count())
			}
		})
	}
}

func TestSummariesAddCountAndSumAndDropQuantiles(t *testing.T) {
	h := newHarness(t, nil)
	build := func(pts ...pt) pmetric.Metrics {
		md, ms := newBatch()
		s := appendMetric(ms, "anvil.export.generate.duration").SetEmptySummary()
		for _, p := range pts {
			dp := s.DataPoints().AppendEmpty()
			putAttrs(dp.Attributes(), p.attrs)
			dp.SetStartTimestamp(sec(p.start))
			dp.SetTimestamp(sec(p.ts))
			dp.SetCount(uint64(p.v))
			dp.SetSum(p.v * 10)
			q := dp.QuantileValues().AppendEmpty()
			q.SetQuantile(0.5)
			q.SetValue(9)
		}
		return md
	}
	// Not collapsed: quantiles stay.
	p := only(t, h.process(t, build(pt{attrs: labels("format", "json"), v: 3, start: 1, ts: 5}))).Summary().DataPoints().At(0)
	assert.Equal(t, 1, p.QuantileValues().Len())

	out := h.process(t, build(
		pt{attrs: labels("format", "csv", "labeler_id", "a"), v: 4, start: 1, ts: 10},
		pt{attrs: labels("format", "csv", "labeler_id", "b"), v: 6, start: 1, ts: 10}))
	p = only(t, out).Summary().DataPoints().At(0)
	assert.Equal(t, uint64(10), p.Count())
	assert.InDelta(t, 100, p.Sum(), 1e-9)
	assert.Equal(t, 0, p.QuantileValues().Len(), "quantiles of a merged summary cannot be known")

	// Cumulative: b alone reports, a's latest still counts.
	p = only(t, h.process(t, build(pt{attrs: labels("format", "csv", "labeler_id", "b"), v: 8, start: 1, ts: 20}))).Summary().DataPoints().At(0)
	assert.Equal(t, uint64(12), p.Count())
	assert.Equal(t, 0, p.QuantileValues().Len())
}

func TestOverflowSeriesPerMetricOverTheCap(t *testing.T) {
	for _, cumulative := range []bool{false, true} {
		t.Run(map[bool]string{false: "delta", true: "cumulative"}[cumulative], func(t *testing.T) {
			h := newHarness(t, func(c *Config) { c.MaxSeriesPerMetric = 2 })
			var pts []pt
			for _, q := range []string{"q1", "q2", "q3", "q4", "q1"} {
				pts = append(pts, pt{attrs: labels("queue_id", q, "labeler_id", "x"+q), v: 1, start: 1, ts: 10})
			}
			// q1's second point has a different labeler: another input.
			pts[4].attrs["labeler_id"] = "other"
			out := h.process(t, sumBatch(submits, cumulative, pts...))
			got := numbers(t, out)[submits]
			assert.Equal(t, map[string]float64{"queue_id=q1": 2, "queue_id=q2": 1, "otel.metric.overflow=true": 2}, got)
			metadatatest.AssertEqualCardinalityGuardOverflowPoints(t, h.tel, []metricdata.DataPoint[int64]{{Value: 2}}, metricdatatest.IgnoreTimestamp())
			metadatatest.AssertEqualCardinalityGuardActiveSeries(t, h.tel, []metricdata.DataPoint[int64]{
				{Value: 3, Attributes: attribute.NewSet(attribute.String("metric", submits))},
			}, metricdatatest.IgnoreTimestamp())

			// Existing series keep aggregating at the cap; an overflowed input stays in overflow.
			out = h.process(t, sumBatch(submits, cumulative,
				pt{attrs: labels("queue_id", "q3", "labeler_id", "xq3"), v: 5, start: 1, ts: 20},
				pt{attrs: labels("queue_id", "q2", "labeler_id", "xq2"), v: 4, start: 1, ts: 20}))
			want := map[string]float64{"queue_id=q2": 4, "otel.metric.overflow=true": 5}
			if cumulative {
				want = map[string]float64{"queue_id=q2": 4, "otel.metric.overflow=true": 6}
			}
			assert.Equal(t, want, numbers(t, out)[submits])
		})
	}
}

func TestAllowlistOverrideKeepsOnlyListedAttributes(t *testing.T) {
	h := newHarness(t, func(c *Config) {
		c.Metrics = map[string]MetricConfig{submits: {AllowedAttributes: []string{"queue_id"}, MaxSeries: intPtr(1)}}
	})
	md, ms := newBatch()
	addSum(ms, submits, false, true, false,
		pt{attrs: labels("queue_id", "q1", "policy_type", "rr", "labeler_id", "a"), v: 1},
		pt{attrs: labels("queue_id", "q1", "policy_type", "fifo"), v: 2},
		pt{attrs: labels("queue_id", "q2"), v: 4})
	addSum(ms, "anvil.other", false, true, false,
		pt{attrs: labels("queue_id", "q1", "policy_type", "rr", "labeler_id", "a"), v: 1},
		pt{attrs: labels("queue_id", "q2", "policy_type", "rr", "labeler_id", "b"), v: 1})
	got := numbers(t, h.process(t, md))
	assert.Equal(t, map[string]float64{"queue_id=q1": 3, "otel.metric.overflow=true": 4}, got[submits], "allowlist and max_series override")
	assert.Equal(t, map[string]float64{"policy_type=rr,queue_id=q1": 1, "policy_type=rr,queue_id=q2": 1}, got["anvil.other"], "other metrics use drop_attributes")
	// dropped: labeler_id+policy_type, policy_type, (overflow: queue_id) + 2 labeler_id on the other metric
	metadatatest.AssertEqualCardinalityGuardAttributesDropped(t, h.tel, []metricdata.DataPoint[int64]{{Value: 6}}, metricdatatest.IgnoreTimestamp())
}

// A metric that keeps labeler_id by its allowlist keeps it although the
// global drop list names it (the more specific setting wins); every other
// metric still loses it.
func TestAllowlistWinsOverTheDropList(t *testing.T) {
	h := newHarness(t, func(c *Config) {
		c.Metrics = map[string]MetricConfig{submits: {AllowedAttributes: []string{"queue_id", "labeler_id"}}}
	})
	require.Contains(t, createDefaultConfig().(*Config).DropAttributes, "labeler_id", "the default drop list names it")
	md, ms := newBatch()
	addSum(ms, submits, false, true, false,
		pt{attrs: labels("queue_id", "q1", "labeler_id", "a", "sample_id", "s1"), v: 1},
		pt{attrs: labels("queue_id", "q1", "labeler_id", "a"), v: 2},
		pt{attrs: labels("queue_id", "q1", "labeler_id", "b"), v: 4})
	addSum(ms, "anvil.other", false, true, false,
		pt{attrs: labels("queue_id", "q1", "labeler_id", "a"), v: 1},
		pt{attrs: labels("queue_id", "q1", "labeler_id", "b"), v: 1})
	got := numbers(t, h.process(t, md))
	assert.Equal(t, map[string]float64{"labeler_id=a,queue_id=q1": 3, "labeler_id=b,queue_id=q1": 4}, got[submits])
	assert.Equal(t, map[string]float64{"queue_id=q1": 2}, got["anvil.other"])
}

func TestResourceAttributesAreLeftAloneAndSeparateSeries(t *testing.T) {
	h := newHarness(t, nil)
	md := pmetric.NewMetrics()
	for _, inst := range []string{"n1", "n2", "n1"} { // n1 twice: one writer split over two ResourceMetrics
		rm := md.ResourceMetrics().AppendEmpty()
		rm.Resource().Attributes().PutStr("service.instance.id", inst)
		rm.Resource().Attributes().PutStr("labeler_id", "resource-level")
		sm := rm.ScopeMetrics().AppendEmpty()
		addSum(sm.Metrics(), submits, false, true, false, pt{attrs: labels("queue_id", "q1", "labeler_id", inst+"x"), v: 2})
	}
	out := h.process(t, md)
	assert.Equal(t, map[string]float64{"n1|queue_id=q1": 4, "n2|queue_id=q1": 2}, numbers(t, out)[submits])
	assert.Equal(t, 2, out.ResourceMetrics().Len(), "the emptied duplicate resource is pruned")
	for i := 0; i < out.ResourceMetrics().Len(); i++ {
		v, ok := out.ResourceMetrics().At(i).Resource().Attributes().Get("labeler_id")
		require.True(t, ok)
		assert.Equal(t, "resource-level", v.Str())
	}
}

func TestStalenessMarkersAreDroppedAndCounted(t *testing.T) {
	h := newHarness(t, nil)
	a := labels("queue_id", "q1", "labeler_id", "a")
	h.process(t, sumBatch(submits, true, pt{attrs: a, v: 10, start: 1, ts: 10}))
	md := sumBatch(submits, true, pt{attrs: a, v: 0, start: 1, ts: 20}, pt{attrs: labels("queue_id", "q1", "labeler_id", "b"), v: 1, start: 1, ts: 20})
	md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).Sum().DataPoints().At(0).SetFlags(pmetric.DefaultDataPointFlags.WithNoRecordedValue(true))
	assert.Equal(t, map[string]float64{"queue_id=q1": 11}, numbers(t, h.process(t, md))[submits])
	out := h.process(t, sumBatch(submits, true, pt{attrs: a, v: 12, start: 1, ts: 30}))
	assert.Equal(t, map[string]float64{"queue_id=q1": 13}, numbers(t, out)[submits], "the marker did not count as a reset")
	metadatatest.AssertEqualCardinalityGuardStalePointsDropped(t, h.tel, []metricdata.DataPoint[int64]{{Value: 1}}, metricdatatest.IgnoreTimestamp())
}

func TestSeriesUnseenForTTLAreEvictedAndFreeTheirSlot(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.MaxSeriesPerMetric = 1; c.SeriesTTL = 10 * time.Minute })
	q1 := labels("queue_id", "q1", "labeler_id", "a")
	q2 := labels("queue_id", "q2", "labeler_id", "a")
	out := h.process(t, sumBatch(submits, true, pt{attrs: q1, v: 5, start: 1, ts: 10}, pt{attrs: q2, v: 7, start: 1, ts: 10}))
	assert.Equal(t, map[string]float64{"queue_id=q1": 5, "otel.metric.overflow=true": 7}, numbers(t, out)[submits])

	// q2 keeps reporting (into overflow); q1 goes quiet. Just under the TTL nothing is freed.
	h.clock.Advance(9*time.Minute + 59*time.Second)
	out = h.process(t, sumBatch(submits, true, pt{attrs: q2, v: 8, start: 1, ts: 20}))
	assert.Equal(t, map[string]float64{"otel.metric.overflow=true": 8}, numbers(t, out)[submits])
	metadatatest.AssertEqualCardinalityGuardActiveSeries(t, h.tel, []metricdata.DataPoint[int64]{
		{Value: 2, Attributes: attribute.NewSet(attribute.String("metric", submits))},
	}, metricdatatest.IgnoreTimestamp())

	h.clock.Advance(2 * time.Second)
	// q1 is evicted: its slot is free for a new series. q2 stays pinned to the
	// overflow series (moving it would make overflow go backwards).
	q3 := labels("queue_id", "q3", "labeler_id", "b")
	out = h.process(t, sumBatch(submits, true, pt{attrs: q3, v: 1, start: 1, ts: 30}, pt{attrs: q2, v: 9, start: 1, ts: 30}))
	assert.Equal(t, map[string]float64{"queue_id=q3": 1, "otel.metric.overflow=true": 9}, numbers(t, out)[submits])
	metadatatest.AssertEqualCardinalityGuardSeriesEvicted(t, h.tel, []metricdata.DataPoint[int64]{{Value: 1}}, metricdatatest.IgnoreTimestamp())

	// q1 comes back after eviction: a new input to a full metric -> overflow,
	// its whole cumulative value added (it was forgotten).
	out = h.process(t, sumBatch(submits, true, pt{attrs: q1, v: 6, start: 1, ts: 40}))
	assert.Equal(t, map[string]float64{"otel.metric.overflow=true": 15}, numbers(t, out)[submits])

	// Everything quiet for the TTL: all state is freed.
	h.clock.Advance(11 * time.Minute)
	h.process(t, pmetric.NewMetrics())
	h.g.mu.Lock()
	assert.Empty(t, h.g.streams)
	h.g.mu.Unlock()
}

func TestUncappedMetric(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Metrics = map[string]MetricConfig{submits: {MaxSeries: intPtr(0)}} })
	var pts []pt
	for i := 0; i < 3000; i++ {
		pts = append(pts, pt{attrs: labels("queue_id", string(rune('a'+i%26))+string(rune('a'+i/26%26))+string(rune('a'+i/676))), v: 1})
	}
	assert.Len(t, numbers(t, h.process(t, sumBatch(submits, false, pts...)))[submits], 3000)
}
