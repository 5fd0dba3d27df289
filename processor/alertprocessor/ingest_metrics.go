package alertprocessor // import "github.com/anvil/anvilcol/processor/alertprocessor"

import (
	"math"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/anvil/anvilcol/internal/metricstate"
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
	start pcommon.Timestamp
	value float64               // gauge/sum
	hist  metricstate.Histogram // histogram, exponential histogram, summary
	seen  time.Time
}

// maxSeries bounds the cumulative series remembered; beyond it the stalest
// are forgotten at the next evaluation (their next point is a new baseline).
const maxSeries = 100_000

// seriesKey is the identity of a series: metric name and resource
// (metricHash) and data point attributes (metricstate.HashAttributes).
func seriesKey(metricHash uint64, attrs pcommon.Map) uint64 {
	return metricHash + metricstate.HashAttributes(attrs)*0x9E3779B97F4A7C15
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

func (e *engine) state(key uint64) (*seriesState, bool) {
	st, ok := e.series[key]
	if !ok {
		st = &seriesState{}
		e.series[key] = st
	}
	return st, ok
}

// numberObs differences a gauge or sum point.
// NaN carries no sample: false.
func (e *engine) numberObs(key uint64, dp pmetric.NumberDataPoint, kind obsKind, cumulative, monotonic bool, now time.Time) (obs, bool) {
	v := numberValue(dp)
	if math.IsNaN(v) {
		return obs{}, false
	}
	o := obs{kind: kind, value: v, hasValue: true}
	if kind == kindSum && !cumulative {
		o.delta, o.hasDelta = v, true
		return o, true
	}
	st, ok := e.state(key)
	switch {
	case ok:
		// A counter that restarted: everything since the restart is increase.
		isSum := kind == kindSum
		o.delta = metricstate.SumDelta(st.value, v, isSum && monotonic, isSum && metricstate.Restarted(st.start, dp.StartTimestamp()))
		o.hasDelta = true
	case kind == kindSum && e.isNewSeries(dp.StartTimestamp()):
		o.delta, o.hasDelta = v, true
	}
	st.start, st.value, st.seen = dp.StartTimestamp(), v, now
	return o, true
}

// cumulativeDelta differences the cumulative point read into e.cur against
// the series' previous one: the increase, or nil for the first point of a
// series with unknown history (a baseline). The result is valid until the
// next point.
func (e *engine) cumulativeDelta(key uint64, k metricstate.Kind, start pcommon.Timestamp, now time.Time) *metricstate.Histogram {
	st, ok := e.state(key)
	inc := &e.cur
	switch {
	case !ok && !e.isNewSeries(start):
		inc = nil
	case ok && !metricstate.Restarted(st.start, start) && e.inc.Delta(k, &e.cur, &st.hist):
		inc = &e.inc
	}
	// The point becomes the series' last one by a swap, not a copy: e.cur
	// keeps the old buffers for the next point.
	st.hist, e.cur = e.cur, st.hist
	if inc == &e.cur {
		inc = &st.hist
	}
	st.start, st.seen = start, now
	return inc
}

// increase is the point in e.cur as an increase: itself for delta
// temporality, else differenced (nil for a baseline).
func (e *engine) increase(key uint64, k metricstate.Kind, start pcommon.Timestamp, cumulative bool, now time.Time) *metricstate.Histogram {
	if !cumulative {
		return &e.cur
	}
	return e.cumulativeDelta(key, k, start, now)
}

// histogramObs differences an explicit-bounds histogram point.
func (e *engine) histogramObs(key uint64, dp pmetric.HistogramDataPoint, cumulative bool, now time.Time) obs {
	e.cur.ReadExplicit(dp)
	h := e.increase(key, metricstate.Explicit, dp.StartTimestamp(), cumulative, now)
	if h == nil {
		return obs{kind: kindHistogram}
	}
	o := histObs(h, cumulative, e.scratch[:0])
	for i, c := range h.Buckets {
		ub := math.Inf(1)
		if i < len(h.Bounds) {
			ub = h.Bounds[i]
		}
		o.buckets = append(o.buckets, bucket{ub, float64(c)})
	}
	e.scratch = o.buckets
	return o
}

// histObs is the observation of a histogram increase, without its buckets.
func histObs(h *metricstate.Histogram, cumulative bool, buckets []bucket) obs {
	o := obs{kind: kindHistogram, buckets: buckets, hasDelta: true, count: float64(h.Count), sum: h.Sum}
	// min/max of a cumulative series are lifetime values, not the increase's.
	if h.HasMin && h.HasMax && !cumulative {
		o.min, o.max, o.hasMinMax = h.Min, h.Max, true
	}
	if o.count > 0 {
		o.value, o.hasValue = o.sum/o.count, true
	}
	return o
}

// expHistogramObs differences an exponential histogram point and turns its
// buckets into upper bounds (metricstate: positive bucket i holds
// (base^i, base^(i+1)], negative bucket i mirrors it); the zero bucket's
// upper bound is the zero threshold. Each bucket's lower bound is added with
// no observations so interpolation uses the true bucket width, even when the
// buckets below it are empty.
func (e *engine) expHistogramObs(key uint64, dp pmetric.ExponentialHistogramDataPoint, cumulative bool, now time.Time) obs {
	e.cur.ReadExponential(dp)
	h := e.increase(key, metricstate.Exponential, dp.StartTimestamp(), cumulative, now)
	if h == nil {
		return obs{kind: kindHistogram}
	}
	o := histObs(h, cumulative, e.scratch[:0])
	s := h.Scale
	for j, c := range h.Neg.Counts {
		if i := h.Neg.Offset + int32(j); c > 0 {
			o.buckets = append(o.buckets, bucket{-metricstate.Boundary(s, i+1), 0}, bucket{-metricstate.Boundary(s, i), float64(c)})
		}
	}
	if h.ZeroCount > 0 {
		o.buckets = append(o.buckets, bucket{-h.ZeroThreshold, 0}, bucket{h.ZeroThreshold, float64(h.ZeroCount)})
	}
	for j, c := range h.Pos.Counts {
		if i := h.Pos.Offset + int32(j); c > 0 {
			o.buckets = append(o.buckets, bucket{metricstate.Boundary(s, i), 0}, bucket{metricstate.Boundary(s, i+1), float64(c)})
		}
	}
	e.scratch = o.buckets
	return o
}

// summaryObs differences a summary's count and sum (summaries are cumulative
// by definition); its quantiles are taken as reported.
func (e *engine) summaryObs(key uint64, dp pmetric.SummaryDataPoint, now time.Time) obs {
	o := obs{kind: kindSummary, hasDelta: true}
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
	e.cur.ReadSummary(dp)
	if h := e.cumulativeDelta(key, metricstate.Summary, dp.StartTimestamp(), now); h != nil {
		o.count, o.sum = float64(h.Count), h.Sum
	}
	if o.count > 0 {
		o.value, o.hasValue = o.sum/o.count, true
	}
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
					resHash, resHashed = metricstate.HashAttributes(res), true
				}
				e.consumeMetric(m, rules, res, resHash, now)
			}
		}
	}
}

func (e *engine) consumeMetric(m pmetric.Metric, rules []*rule, res pcommon.Map, resHash uint64, now time.Time) {
	// Loops per point type, not one generic loop: a method call through a
	// type parameter is an indirect call per point.
	p := pointIngest{e: e, rules: rules, res: res, mh: resHash ^ metricstate.HashString(m.Name()), now: now}
	switch m.Type() {
	case pmetric.MetricTypeGauge:
		p.numbers(m.Gauge().DataPoints(), kindGauge, true, false)
	case pmetric.MetricTypeSum:
		s := m.Sum()
		p.numbers(s.DataPoints(), kindSum, s.AggregationTemporality() == pmetric.AggregationTemporalityCumulative, s.IsMonotonic())
	case pmetric.MetricTypeHistogram:
		h := m.Histogram()
		cumulative := h.AggregationTemporality() == pmetric.AggregationTemporalityCumulative
		for i := 0; i < h.DataPoints().Len(); i++ {
			if dp := h.DataPoints().At(i); !dp.Flags().NoRecordedValue() {
				p.observe(e.histogramObs(p.key(dp.Attributes()), dp, cumulative, now), dp.Attributes())
			}
		}
	case pmetric.MetricTypeExponentialHistogram:
		h := m.ExponentialHistogram()
		cumulative := h.AggregationTemporality() == pmetric.AggregationTemporalityCumulative
		for i := 0; i < h.DataPoints().Len(); i++ {
			if dp := h.DataPoints().At(i); !dp.Flags().NoRecordedValue() {
				p.observe(e.expHistogramObs(p.key(dp.Attributes()), dp, cumulative, now), dp.Attributes())
			}
		}
	case pmetric.MetricTypeSummary:
		for i := 0; i < m.Summary().DataPoints().Len(); i++ {
			if dp := m.Summary().DataPoints().At(i); !dp.Flags().NoRecordedValue() {
				p.observe(e.summaryObs(p.key(dp.Attributes()), dp, now), dp.Attributes())
			}
		}
	}
}

// pointIngest is what every data point of one metric is observed with.
type pointIngest struct {
	e     *engine
	rules []*rule
	res   pcommon.Map
	mh    uint64 // metric name and resource hash
	now   time.Time
}

func (p *pointIngest) key(attrs pcommon.Map) uint64 { return seriesKey(p.mh, attrs) }

func (p *pointIngest) observe(o obs, attrs pcommon.Map) {
	p.e.observe(p.rules, &o, attrs, p.res, p.now)
}

// numbers observes gauge and sum points that carry a value (staleness
// markers and NaN carry none).
func (p *pointIngest) numbers(dps pmetric.NumberDataPointSlice, kind obsKind, cumulative, monotonic bool) {
	for i := 0; i < dps.Len(); i++ {
		dp := dps.At(i)
		if dp.Flags().NoRecordedValue() {
			continue
		}
		if o, ok := p.e.numberObs(p.key(dp.Attributes()), dp, kind, cumulative, monotonic, p.now); ok {
			p.observe(o, dp.Attributes())
		}
	}
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
