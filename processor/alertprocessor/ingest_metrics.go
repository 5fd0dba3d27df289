package alertprocessor // import "github.com/anvil/anvilcol/processor/alertprocessor"

import (
	"math"
	"time"

	"github.com/cespare/xxhash/v2"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/anvil/anvilcol/internal/expohist"
)

// obsKind is the kind of metric a data point came from.
type obsKind int

const (
	kindGauge obsKind = iota
	kindSum
	kindHistogram
	kindSummary
)

// bucket is one histogram bucket delta: observations up to upper.
type bucket struct{ upper, count float64 }

// obs is one data point after cumulative differencing, ready to be added to
// the window of every rule that reads its metric. Slices are scratch buffers
// of the engine, valid until the next data point.
type obs struct {
	kind      obsKind
	value     float64 // gauge/sum: the reported value; histogram/summary: mean of the delta
	hasValue  bool
	delta     float64 // gauge/sum: change since the previous point of the series
	hasDelta  bool
	count     float64 // histogram/summary: observations in the delta
	sum       float64
	min, max  float64
	hasMinMax bool
	buckets   []bucket
	quant     map[float64]float64
}

// seriesState is the previous point of one cumulative series (or gauge).
type seriesState struct {
	start   pcommon.Timestamp
	value   float64
	count   uint64
	sum     float64
	bounds  []float64
	buckets []uint64
	scale   int32
	exp     map[expKey]uint64 // exponential: bucket (range, index) -> count
	zero    uint64
	seen    time.Time
}

// expKey names one exponential bucket: its range (negative or positive) and
// its index, which may be negative in either range (magnitudes below 1).
type expKey struct {
	neg bool
	idx int32
}

// maxSeries bounds the cumulative series remembered; beyond it the stalest
// are forgotten at the next evaluation (their next point is a new baseline).
const maxSeries = 100_000

// seriesKey hashes the identity of a series: metric name and resource
// (metricHash) and data point attributes (order-independent).
func seriesKey(metricHash uint64, attrs pcommon.Map) uint64 {
	return metricHash + attrsHash(attrs)*0x9E3779B97F4A7C15
}

func attrsHash(m pcommon.Map) uint64 {
	var sum uint64
	for k, v := range m.All() {
		var vh uint64
		if v.Type() == pcommon.ValueTypeStr {
			vh = xxhash.Sum64String(v.Str())
		} else {
			vh = xxhash.Sum64String(v.AsString())
		}
		// Summing per-attribute hashes makes the key independent of order.
		sum += xxhash.Sum64String(k)*0xC2B2AE3D27D4EB4F ^ vh
	}
	return sum
}

func numberValue(dp pmetric.NumberDataPoint) float64 {
	if dp.ValueType() == pmetric.NumberDataPointValueTypeInt {
		return float64(dp.IntValue())
	}
	return dp.DoubleValue()
}

// isNewSeries reports whether a series with no remembered state started after
// the engine did, so its first cumulative point is all increase (rather than
// a baseline of unknown history).
func (e *engine) isNewSeries(start pcommon.Timestamp) bool {
	return start != 0 && !start.AsTime().Before(e.started)
}

// numberObs differences a gauge or sum point.
func (e *engine) numberObs(key uint64, dp pmetric.NumberDataPoint, kind obsKind, cumulative, monotonic bool, now time.Time) obs {
	v := numberValue(dp)
	o := obs{kind: kind, value: v, hasValue: true}
	if kind == kindSum && !cumulative {
		o.delta, o.hasDelta = v, true
		return o
	}
	st, ok := e.series[key]
	if !ok {
		st = &seriesState{}
		e.series[key] = st
		if kind == kindSum && e.isNewSeries(dp.StartTimestamp()) {
			o.delta, o.hasDelta = v, true
		}
	} else {
		reset := kind == kindSum && ((dp.StartTimestamp() != 0 && dp.StartTimestamp() != st.start) || (monotonic && v < st.value))
		if reset {
			o.delta = v // a counter restarted: everything since the restart is increase
		} else {
			o.delta = v - st.value
		}
		o.hasDelta = true
	}
	st.start, st.value, st.seen = dp.StartTimestamp(), v, now
	return o
}

// histogramObs differences an explicit-bounds histogram point.
func (e *engine) histogramObs(key uint64, dp pmetric.HistogramDataPoint, cumulative bool, now time.Time) obs {
	o := obs{kind: kindHistogram, buckets: e.scratch[:0], hasDelta: true}
	counts := dp.BucketCounts()
	bounds := dp.ExplicitBounds()
	if dp.HasMin() && dp.HasMax() && !cumulative {
		o.min, o.max, o.hasMinMax = dp.Min(), dp.Max(), true
	}
	var prev *seriesState
	if cumulative {
		st, ok := e.series[key]
		if !ok {
			st = &seriesState{}
			e.series[key] = st
		}
		baseline := !ok && !e.isNewSeries(dp.StartTimestamp())
		reset := ok && ((dp.StartTimestamp() != 0 && dp.StartTimestamp() != st.start) || dp.Count() < st.count || !sameBounds(st.bounds, bounds))
		if baseline {
			rememberHistogram(st, dp, now)
			return obs{kind: kindHistogram}
		}
		if ok && !reset {
			prev = st
		}
		// st is overwritten only after the delta below has been taken.
		defer rememberHistogram(st, dp, now)
	}
	o.count, o.sum = float64(dp.Count()), dp.Sum()
	if prev != nil {
		o.count -= float64(prev.count)
		o.sum -= prev.sum
	}
	for i := 0; i < counts.Len(); i++ {
		c := float64(counts.At(i))
		if prev != nil && i < len(prev.buckets) {
			c -= float64(prev.buckets[i])
		}
		ub := math.Inf(1)
		if i < bounds.Len() {
			ub = bounds.At(i)
		}
		o.buckets = append(o.buckets, bucket{ub, c})
	}
	e.scratch = o.buckets
	if o.count > 0 {
		o.value, o.hasValue = o.sum/o.count, true
	}
	return o
}

func sameBounds(prev []float64, b pcommon.Float64Slice) bool {
	if len(prev) != b.Len() {
		return false
	}
	for i, v := range prev {
		if b.At(i) != v {
			return false
		}
	}
	return true
}

func rememberHistogram(st *seriesState, dp pmetric.HistogramDataPoint, now time.Time) {
	st.start, st.count, st.sum, st.seen = dp.StartTimestamp(), dp.Count(), dp.Sum(), now
	b, c := dp.ExplicitBounds(), dp.BucketCounts()
	st.bounds = st.bounds[:0]
	for i := 0; i < b.Len(); i++ {
		st.bounds = append(st.bounds, b.At(i))
	}
	st.buckets = st.buckets[:0]
	for i := 0; i < c.Len(); i++ {
		st.buckets = append(st.buckets, c.At(i))
	}
}

// expHistogramObs differences an exponential histogram point and turns its
// buckets into upper bounds: bucket i at scale s holds (base^i, base^(i+1)]
// with base = 2^(2^-s); negative buckets mirror it; the zero bucket's upper
// bound is the zero threshold. Each bucket's lower bound is added with no
// observations so interpolation uses the true bucket width.
func (e *engine) expHistogramObs(key uint64, dp pmetric.ExponentialHistogramDataPoint, cumulative bool, now time.Time) obs {
	o := obs{kind: kindHistogram, buckets: e.scratch[:0]}
	cur := expCounts(dp)
	scale := dp.Scale()
	if dp.HasMin() && dp.HasMax() && !cumulative {
		o.min, o.max, o.hasMinMax = dp.Min(), dp.Max(), true
	}
	o.count, o.sum = float64(dp.Count()), dp.Sum()
	zero := float64(dp.ZeroCount())
	if cumulative {
		st, ok := e.series[key]
		if !ok {
			st = &seriesState{}
			e.series[key] = st
		}
		isReset := ok && ((dp.StartTimestamp() != 0 && dp.StartTimestamp() != st.start) || dp.Count() < st.count || scale > st.scale)
		baseline := !ok && !e.isNewSeries(dp.StartTimestamp())
		prevExp, prevScale, prevCount, prevSum, prevZero := st.exp, st.scale, st.count, st.sum, st.zero
		st.start, st.count, st.sum, st.zero, st.scale, st.exp, st.seen = dp.StartTimestamp(), dp.Count(), dp.Sum(), dp.ZeroCount(), scale, cur, now
		if baseline {
			return obs{kind: kindHistogram}
		}
		if ok && !isReset {
			o.count -= float64(prevCount)
			o.sum -= prevSum
			zero -= float64(prevZero)
			delta := make(map[expKey]uint64, len(cur))
			for i, c := range cur {
				delta[i] = c
			}
			for i, c := range prevExp {
				j := downscale(i, prevScale-scale)
				if delta[j] >= c {
					delta[j] -= c
				} else {
					delta[j] = 0
				}
			}
			cur = delta
		}
	}
	for i, c := range cur {
		if c == 0 {
			continue
		}
		var ub, lb float64
		if i.neg {
			ub, lb = -expohist.Boundary(scale, i.idx), -expohist.Boundary(scale, i.idx+1)
		} else {
			ub, lb = expohist.Boundary(scale, i.idx+1), expohist.Boundary(scale, i.idx)
		}
		// The lower bound, with no observations, keeps interpolation within
		// this bucket even when the buckets below it are empty.
		o.buckets = append(o.buckets, bucket{lb, 0}, bucket{ub, float64(c)})
	}
	if zero > 0 {
		zt := dp.ZeroThreshold()
		o.buckets = append(o.buckets, bucket{-zt, 0}, bucket{zt, zero})
	}
	e.scratch = o.buckets
	if o.count > 0 {
		o.value, o.hasValue = o.sum/o.count, true
	}
	o.hasDelta = true
	return o
}

// downscale maps a bucket index to a scale d steps coarser.
func downscale(i expKey, d int32) expKey {
	if d <= 0 {
		return i
	}
	return expKey{neg: i.neg, idx: i.idx >> d}
}

func expCounts(dp pmetric.ExponentialHistogramDataPoint) map[expKey]uint64 {
	pos, neg := dp.Positive(), dp.Negative()
	m := make(map[expKey]uint64, pos.BucketCounts().Len()+neg.BucketCounts().Len())
	for i := 0; i < pos.BucketCounts().Len(); i++ {
		if c := pos.BucketCounts().At(i); c > 0 {
			m[expKey{idx: pos.Offset() + int32(i)}] += c
		}
	}
	for i := 0; i < neg.BucketCounts().Len(); i++ {
		if c := neg.BucketCounts().At(i); c > 0 {
			m[expKey{neg: true, idx: neg.Offset() + int32(i)}] += c
		}
	}
	return m
}

// summaryObs differences a summary's count and sum; its quantiles are taken as reported.
func (e *engine) summaryObs(key uint64, dp pmetric.SummaryDataPoint, now time.Time) obs {
	o := obs{kind: kindSummary, count: float64(dp.Count()), sum: dp.Sum()}
	qs := dp.QuantileValues()
	if qs.Len() > 0 {
		o.quant = make(map[float64]float64, qs.Len())
		for i := 0; i < qs.Len(); i++ {
			o.quant[qs.At(i).Quantile()] = qs.At(i).Value()
		}
		if lo, ok := o.quant[0]; ok {
			if hi, ok := o.quant[1]; ok {
				o.min, o.max, o.hasMinMax = lo, hi, true
			}
		}
	}
	// Summaries are cumulative by definition.
	st, ok := e.series[key]
	if !ok {
		st = &seriesState{}
		e.series[key] = st
	}
	switch {
	case !ok && !e.isNewSeries(dp.StartTimestamp()):
		o.count, o.sum = 0, 0
	case ok && !((dp.StartTimestamp() != 0 && dp.StartTimestamp() != st.start) || dp.Count() < st.count):
		o.count -= float64(st.count)
		o.sum -= st.sum
	}
	st.start, st.count, st.sum, st.seen = dp.StartTimestamp(), dp.Count(), dp.Sum(), now
	if o.count > 0 {
		o.value, o.hasValue = o.sum/o.count, true
	}
	o.hasDelta = true
	return o
}

// add puts one observation into an agg.
func (a *agg) addObs(o *obs, at time.Time, withSketch bool) {
	switch o.kind {
	case kindGauge:
		a.addSample(o.value, withSketch)
		if o.hasDelta {
			a.inc += o.delta
		}
		a.setLast(o.value, at)
	case kindSum:
		if o.hasDelta {
			a.addSample(o.delta, withSketch)
			a.inc += o.delta
		}
		a.setLast(o.value, at)
	case kindHistogram, kindSummary:
		a.n += o.count
		a.sum += o.sum
		a.inc += o.count
		if o.hasMinMax && o.count > 0 {
			a.addMinMax(o.min, o.max)
		}
		a.addBuckets(o.buckets)
		if o.quant != nil {
			a.quant, a.quantAt = o.quant, at
		}
		if o.hasValue {
			a.setLast(o.value, at)
		}
	}
}

// consumeMetrics walks a batch once and feeds every data point of a metric
// some rule reads into that rule's window.
func (e *engine) consumeMetrics(md pmetric.Metrics) {
	if len(e.metricRules) == 0 {
		return
	}
	in := e.metricIngest()
	defer in.done()
	rms := md.ResourceMetrics()
	for i := 0; i < rms.Len(); i++ {
		rm := rms.At(i)
		res := rm.Resource().Attributes()
		var resHash uint64
		resHashed := false
		sms := rm.ScopeMetrics()
		for j := 0; j < sms.Len(); j++ {
			ms := sms.At(j).Metrics()
			for k := 0; k < ms.Len(); k++ {
				m := ms.At(k)
				rules := in.rules(m.Name())
				if len(rules) == 0 {
					continue
				}
				now := in.lock()
				if !resHashed {
					resHash, resHashed = attrsHash(res), true
				}
				e.consumeMetric(m, rules, res, resHash, now)
			}
		}
	}
}

func (e *engine) consumeMetric(m pmetric.Metric, rules []*rule, res pcommon.Map, resHash uint64, now time.Time) {
	mh := resHash ^ xxhash.Sum64String(m.Name())
	switch m.Type() {
	case pmetric.MetricTypeGauge:
		dps := m.Gauge().DataPoints()
		for i := 0; i < dps.Len(); i++ {
			dp := dps.At(i)
			if skipNumber(dp) {
				continue
			}
			o := e.numberObs(seriesKey(mh, dp.Attributes()), dp, kindGauge, true, false, now)
			e.observe(rules, &o, dp.Attributes(), res, now)
		}
	case pmetric.MetricTypeSum:
		s := m.Sum()
		cumulative := s.AggregationTemporality() == pmetric.AggregationTemporalityCumulative
		dps := s.DataPoints()
		for i := 0; i < dps.Len(); i++ {
			dp := dps.At(i)
			if skipNumber(dp) {
				continue
			}
			o := e.numberObs(seriesKey(mh, dp.Attributes()), dp, kindSum, cumulative, s.IsMonotonic(), now)
			e.observe(rules, &o, dp.Attributes(), res, now)
		}
	case pmetric.MetricTypeHistogram:
		h := m.Histogram()
		cumulative := h.AggregationTemporality() == pmetric.AggregationTemporalityCumulative
		dps := h.DataPoints()
		for i := 0; i < dps.Len(); i++ {
			dp := dps.At(i)
			if dp.Flags().NoRecordedValue() {
				continue
			}
			o := e.histogramObs(seriesKey(mh, dp.Attributes()), dp, cumulative, now)
			e.observe(rules, &o, dp.Attributes(), res, now)
		}
	case pmetric.MetricTypeExponentialHistogram:
		h := m.ExponentialHistogram()
		cumulative := h.AggregationTemporality() == pmetric.AggregationTemporalityCumulative
		dps := h.DataPoints()
		for i := 0; i < dps.Len(); i++ {
			dp := dps.At(i)
			if dp.Flags().NoRecordedValue() {
				continue
			}
			o := e.expHistogramObs(seriesKey(mh, dp.Attributes()), dp, cumulative, now)
			e.observe(rules, &o, dp.Attributes(), res, now)
		}
	case pmetric.MetricTypeSummary:
		dps := m.Summary().DataPoints()
		for i := 0; i < dps.Len(); i++ {
			dp := dps.At(i)
			if dp.Flags().NoRecordedValue() {
				continue
			}
			o := e.summaryObs(seriesKey(mh, dp.Attributes()), dp, now)
			e.observe(rules, &o, dp.Attributes(), res, now)
		}
	}
}

// skipNumber: staleness markers (no recorded value) and NaN carry no sample.
func skipNumber(dp pmetric.NumberDataPoint) bool {
	return dp.Flags().NoRecordedValue() || math.IsNaN(numberValue(dp))
}

// observe adds o to the current slot of its group in every rule.
func (e *engine) observe(rules []*rule, o *obs, attrs, res pcommon.Map, now time.Time) {
	for _, r := range rules {
		g := e.groupFor(r, attrs, res, now)
		if g == nil {
			continue
		}
		g.win.at(now, r.slotWidth).addObs(o, now, r.q > 0)
	}
}
