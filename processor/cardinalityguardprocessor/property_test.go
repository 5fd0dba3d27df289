package cardinalityguardprocessor

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

// The invariants of the issue, checked over random inputs: for every metric
// the total over output series equals the total over input series (sums,
// histogram and summary count and sum) in both temporalities, cumulative
// outputs never go backwards, no two points of one output batch share
// (resource, scope, metric, attributes), and every metric has at most cap+1
// output series.

type propKind int

const (
	propSum propKind = iota
	propHist
	propExp
	propSummary
	propGauge
)

type propMetric struct {
	name       string
	kind       propKind
	cumulative bool
}

// propInput is one input series and what it has sent so far.
type propInput struct {
	res   int
	m     *propMetric
	attrs map[string]string
	start int64
	// cumulative value as last sent
	count   uint64
	sum     float64
	buckets []uint64
	scale   int32
	offset  int32
	sent    bool
}

type agg2 struct{ count, sum float64 }

func TestPropertyInvariantsOverRandomInputs(t *testing.T) {
	trials := 150
	if testing.Short() {
		trials = 40
	}
	for trial := 0; trial < trials; trial++ {
		seed := uint64(trial)
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			runProperty(t, rand.New(rand.NewPCG(seed, 42)))
		})
	}
}

func runProperty(t *testing.T, rng *rand.Rand) {
	capN := 1 + rng.IntN(6)
	h := newHarness(t, func(c *Config) {
		c.MaxSeriesPerMetric = capN
		c.DropAttributes = []string{"labeler_id", "sample_id"}
		c.Metrics = map[string]MetricConfig{"m.allow": {AllowedAttributes: []string{"queue_id"}}}
	})
	metrics := []*propMetric{
		{"m.sum.delta", propSum, false}, {"m.sum.cum", propSum, true}, {"m.allow", propSum, true},
		{"m.hist.delta", propHist, false}, {"m.hist.cum", propHist, true},
		{"m.exp.delta", propExp, false}, {"m.exp.cum", propExp, true},
		{"m.summary", propSummary, true}, {"m.gauge", propGauge, false},
	}
	byName := map[string]*propMetric{}
	for _, m := range metrics {
		byName[m.name] = m
	}
	var inputs []*propInput
	for _, m := range metrics {
		n := 1 + rng.IntN(12)
		seen := map[string]bool{}
		for i := 0; i < n; i++ {
			in := &propInput{res: rng.IntN(2), m: m, attrs: map[string]string{}, start: 1, scale: int32(rng.IntN(3)), offset: int32(rng.IntN(6) - 3)}
			in.attrs["queue_id"] = fmt.Sprint("q", rng.IntN(capN+3))
			if rng.IntN(4) > 0 {
				in.attrs["labeler_id"] = fmt.Sprint("l", rng.IntN(8))
			}
			if rng.IntN(3) == 0 {
				in.attrs["policy_type"] = fmt.Sprint("p", rng.IntN(2))
			}
			id := fmt.Sprint(in.res, in.attrs)
			if seen[id] {
				continue
			}
			seen[id] = true
			in.buckets = make([]uint64, 3)
			inputs = append(inputs, in)
		}
	}
	// Expected totals: delta per batch; cumulative: the sum of every increase
	// each input has shown (a reset's new value counts in full).
	cumExpected := map[string]*agg2{}
	lastOut := map[string]map[string]agg2{} // cumulative: latest emitted value per output series
	for batch := 0; batch < 6; batch++ {
		md := pmetric.NewMetrics()
		// Two ResourceMetrics per resource sometimes: one writer split in a batch.
		rms := map[int][]pmetric.MetricSlice{}
		for r := 0; r < 2; r++ {
			for copies := 0; copies < 1+rng.IntN(2); copies++ {
				rm := md.ResourceMetrics().AppendEmpty()
				rm.Resource().Attributes().PutStr("service.instance.id", fmt.Sprint("r", r))
				sm := rm.ScopeMetrics().AppendEmpty()
				sm.Scope().SetName("anvil")
				rms[r] = append(rms[r], sm.Metrics())
			}
		}
		deltaExpected := map[string]*agg2{}
		gaugeSent := map[string]map[float64]bool{}
		for _, in := range inputs {
			if rng.IntN(3) == 0 {
				continue // silent this batch
			}
			slices := rms[in.res]
			ms := slices[rng.IntN(len(slices))]
			m := newPropMetric(ms, in.m)
			emitProp(rng, in, m, batch, deltaExpected, cumExpected, gaugeSent)
		}
		out := h.process(t, md)

		seenIDs := map[string]bool{}
		perMetricSeries := map[string]map[string]bool{}
		batchOut := map[string]*agg2{}
		forEachMetric(out, func(res string, m pmetric.Metric) {
			visitPoints(m, func(attrs pcommon.Map, count, sum float64) {
				id := res + m.Name() + "|" + attrKey(attrs)
				require.False(t, seenIDs[id], "duplicate output series %s", id)
				seenIDs[id] = true
				if perMetricSeries[res+m.Name()] == nil {
					perMetricSeries[res+m.Name()] = map[string]bool{}
				}
				perMetricSeries[res+m.Name()][id] = true
				for k := range attrs.All() {
					require.NotContains(t, []string{"labeler_id", "sample_id"}, k, "dropped attribute in output")
				}
				a := batchOut[m.Name()]
				if a == nil {
					a = &agg2{}
					batchOut[m.Name()] = a
				}
				a.count += count
				a.sum += sum
				if lastOut[m.Name()] == nil {
					lastOut[m.Name()] = map[string]agg2{}
				}
				if prev, ok := lastOut[m.Name()][id]; ok && byName[m.Name()].cumulative {
					require.GreaterOrEqual(t, count, prev.count, "cumulative output %s went backwards", id)
				}
				lastOut[m.Name()][id] = agg2{count, sum}
				if m.Name() == "m.gauge" {
					require.True(t, gaugeSent[res][sum], "gauge output %v is one of the inputs' values", sum)
				}
			})
		})
		for key, ids := range perMetricSeries {
			require.LessOrEqual(t, len(ids), capN+1, "series of %s", key)
		}
		for _, m := range metrics {
			switch {
			case m.kind == propGauge:
			case !m.cumulative:
				want, got := deltaExpected[m.name], batchOut[m.name]
				if want == nil {
					require.Nil(t, got, m.name)
					continue
				}
				require.NotNil(t, got, m.name)
				require.InDelta(t, want.count, got.count, 1e-6, "%s count, batch %d", m.name, batch)
				require.InDelta(t, want.sum, got.sum, 1e-6, "%s sum, batch %d", m.name, batch)
			default:
				var got agg2
				for _, v := range lastOut[m.name] {
					got.count += v.count
					got.sum += v.sum
				}
				want := cumExpected[m.name]
				if want == nil {
					want = &agg2{}
				}
				require.InDelta(t, want.count, got.count, 1e-6, "%s cumulative count, batch %d", m.name, batch)
				require.InDelta(t, want.sum, got.sum, 1e-6, "%s cumulative sum, batch %d", m.name, batch)
			}
		}
	}
}

func newPropMetric(ms pmetric.MetricSlice, pm *propMetric) pmetric.Metric {
	// One pmetric.Metric per (slice, metric): find it in the slice.
	for i := 0; i < ms.Len(); i++ {
		if ms.At(i).Name() == pm.name {
			return ms.At(i)
		}
	}
	m := ms.AppendEmpty()
	m.SetName(pm.name)
	temp := pmetric.AggregationTemporalityDelta
	if pm.cumulative {
		temp = pmetric.AggregationTemporalityCumulative
	}
	switch pm.kind {
	case propSum:
		m.SetEmptySum().SetAggregationTemporality(temp)
		m.Sum().SetIsMonotonic(true)
	case propHist:
		m.SetEmptyHistogram().SetAggregationTemporality(temp)
	case propExp:
		m.SetEmptyExponentialHistogram().SetAggregationTemporality(temp)
	case propSummary:
		m.SetEmptySummary()
	case propGauge:
		m.SetEmptyGauge()
	}
	return m
}

// emitProp appends one point of input `in` and books what it adds.
func emitProp(rng *rand.Rand, in *propInput, m pmetric.Metric, batch int, delta, cum map[string]*agg2, gauges map[string]map[float64]bool) {
	book := func(target map[string]*agg2, count, sum float64) {
		a := target[in.m.name]
		if a == nil {
			a = &agg2{}
			target[in.m.name] = a
		}
		a.count += count
		a.sum += sum
	}
	incBuckets := make([]uint64, len(in.buckets))
	var incCount uint64
	for i := range incBuckets {
		incBuckets[i] = uint64(rng.IntN(4))
		incCount += incBuckets[i]
	}
	incSum := float64(rng.IntN(50))
	reset := in.m.cumulative && in.sent && rng.IntN(8) == 0
	if reset {
		in.count, in.sum, in.start = 0, 0, int64(batch*10+5)
		clear(in.buckets)
	}
	ts := sec(int64(batch*10 + 10))
	start := sec(in.start)
	var count uint64
	var sum float64
	var buckets []uint64
	if in.m.cumulative {
		in.count += incCount
		in.sum += incSum
		for i := range in.buckets {
			in.buckets[i] += incBuckets[i]
		}
		count, sum, buckets = in.count, in.sum, in.buckets
		book(cum, float64(incCount), incSum)
	} else {
		count, sum, buckets = incCount, incSum, incBuckets
		start = sec(int64(batch * 10))
		book(delta, float64(incCount), incSum)
	}
	in.sent = true
	switch in.m.kind {
	case propSum:
		dp := m.Sum().DataPoints().AppendEmpty()
		putAttrs(dp.Attributes(), in.attrs)
		dp.SetStartTimestamp(start)
		dp.SetTimestamp(ts)
		// count doubles as the value so the sum check covers it.
		dp.SetIntValue(int64(count))
		// keep the booked sum equal to the value
		if in.m.cumulative {
			cum[in.m.name].sum -= incSum
		} else {
			delta[in.m.name].sum -= incSum
		}
	case propHist:
		dp := m.Histogram().DataPoints().AppendEmpty()
		putAttrs(dp.Attributes(), in.attrs)
		dp.SetStartTimestamp(start)
		dp.SetTimestamp(ts)
		dp.ExplicitBounds().FromRaw([]float64{10, 100})
		dp.BucketCounts().FromRaw(buckets)
		dp.SetCount(count)
		dp.SetSum(sum)
	case propExp:
		dp := m.ExponentialHistogram().DataPoints().AppendEmpty()
		putAttrs(dp.Attributes(), in.attrs)
		dp.SetStartTimestamp(start)
		dp.SetTimestamp(ts)
		dp.SetScale(in.scale)
		dp.Positive().SetOffset(in.offset)
		dp.Positive().BucketCounts().FromRaw(buckets)
		dp.SetCount(count)
		dp.SetSum(sum)
	case propSummary:
		dp := m.Summary().DataPoints().AppendEmpty()
		putAttrs(dp.Attributes(), in.attrs)
		dp.SetStartTimestamp(start)
		dp.SetTimestamp(ts)
		dp.SetCount(count)
		dp.SetSum(sum)
	case propGauge:
		dp := m.Gauge().DataPoints().AppendEmpty()
		putAttrs(dp.Attributes(), in.attrs)
		dp.SetTimestamp(ts)
		v := float64(rng.IntN(1000))
		dp.SetDoubleValue(v)
		res := fmt.Sprint("r", in.res, "|")
		if gauges[res] == nil {
			gauges[res] = map[float64]bool{}
		}
		gauges[res][v] = true
	}
}

// visitPoints yields (attributes, count, sum) of every point; for a sum the
// value is the count and the sum is 0; for a gauge the value is the sum.
func visitPoints(m pmetric.Metric, f func(attrs pcommon.Map, count, sum float64)) {
	switch m.Type() {
	case pmetric.MetricTypeSum:
		for i := 0; i < m.Sum().DataPoints().Len(); i++ {
			dp := m.Sum().DataPoints().At(i)
			f(dp.Attributes(), numValue(dp), 0)
		}
	case pmetric.MetricTypeGauge:
		for i := 0; i < m.Gauge().DataPoints().Len(); i++ {
			dp := m.Gauge().DataPoints().At(i)
			f(dp.Attributes(), 0, numValue(dp))
		}
	case pmetric.MetricTypeHistogram:
		for i := 0; i < m.Histogram().DataPoints().Len(); i++ {
			dp := m.Histogram().DataPoints().At(i)
			var n uint64
			for _, c := range dp.BucketCounts().AsRaw() {
				n += c
			}
			if n != dp.Count() {
				panic(fmt.Sprintf("histogram buckets sum to %d, count %d", n, dp.Count()))
			}
			f(dp.Attributes(), float64(dp.Count()), dp.Sum())
		}
	case pmetric.MetricTypeExponentialHistogram:
		for i := 0; i < m.ExponentialHistogram().DataPoints().Len(); i++ {
			dp := m.ExponentialHistogram().DataPoints().At(i)
			n := dp.ZeroCount()
			for _, c := range dp.Positive().BucketCounts().AsRaw() {
				n += c
			}
			if n != dp.Count() {
				panic(fmt.Sprintf("exponential histogram buckets sum to %d, count %d", n, dp.Count()))
			}
			f(dp.Attributes(), float64(dp.Count()), dp.Sum())
		}
	case pmetric.MetricTypeSummary:
		for i := 0; i < m.Summary().DataPoints().Len(); i++ {
			dp := m.Summary().DataPoints().At(i)
			f(dp.Attributes(), float64(dp.Count()), dp.Sum())
		}
	}
}
