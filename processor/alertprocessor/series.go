package alertprocessor // import "github.com/anvil/anvilcol/processor/alertprocessor"

import (
	"math"
	"sort"
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
// of the seriesTracker, valid until the next data point.
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

// observations is what the point adds to a window's observations
// (`min_count`): a gauge point, or a sum point with an increase, is one; a
// histogram or summary point is the observations of its delta.
func (o *obs) observations() float64 {
	switch o.kind {
	case kindHistogram, kindSummary:
		return o.count
	case kindSum:
		if !o.hasDelta {
			return 0
		}
	}
	return 1
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

// seriesTracker turns cumulative data points into increases: it remembers
// the previous point of every series, and owns the buffers a point is
// differenced in. Not safe for concurrent use (the engine lock guards it).
type seriesTracker struct {
	started  time.Time // a series that began later counts from 0
	series   map[uint64]*seriesState
	cur, inc metricstate.Histogram // the point being differenced, its increase
	scratch  []bucket
}

func newSeriesTracker(started time.Time) *seriesTracker {
	return &seriesTracker{started: started, series: map[uint64]*seriesState{}}
}

// newSeriesAge bounds how long a series may have been counting when its
// first point reaches the tracker for that point to count from 0: a client's
// first export after the series began (OpenTelemetry SDKs export every 60 s
// by default; the anvil receiver flushes every 10 s). An older series seen
// for the first time is one that moved here from another gateway replica, or
// one the tracker forgot: its value is mostly history from before, so it is
// a baseline.
const newSeriesAge = 2 * time.Minute

// isNewSeries reports whether a series with no remembered state started after
// the tracker did and recently before its point at ts, so its first
// cumulative point is all increase (rather than a baseline of unknown
// history).
func (t *seriesTracker) isNewSeries(start, ts pcommon.Timestamp) bool {
	return start != 0 && !start.AsTime().Before(t.started) && ts.AsTime().Sub(start.AsTime()) <= newSeriesAge
}

func (t *seriesTracker) state(key uint64) (*seriesState, bool) {
	st, ok := t.series[key]
	if !ok {
		st = &seriesState{}
		t.series[key] = st
	}
	return st, ok
}

// expire forgets series not seen for longer than ttl (or beyond maxSeries,
// the stalest); their next point is a new baseline.
func (t *seriesTracker) expire(now time.Time, ttl time.Duration) {
	for k, s := range t.series {
		if now.Sub(s.seen) > ttl {
			delete(t.series, k)
		}
	}
	if len(t.series) > maxSeries {
		type kv struct {
			k    uint64
			seen time.Time
		}
		all := make([]kv, 0, len(t.series))
		for k, s := range t.series {
			all = append(all, kv{k, s.seen})
		}
		sort.Slice(all, func(i, j int) bool { return all[i].seen.Before(all[j].seen) })
		for _, x := range all[:len(all)-maxSeries] {
			delete(t.series, x.k)
		}
	}
}

// numberObs differences a gauge or sum point.
// NaN carries no sample: false.
func (t *seriesTracker) numberObs(key uint64, dp pmetric.NumberDataPoint, kind obsKind, cumulative, monotonic bool, now time.Time) (obs, bool) {
	v := numberValue(dp)
	if math.IsNaN(v) {
		return obs{}, false
	}
	o := obs{kind: kind, value: v, hasValue: true}
	if kind == kindSum && !cumulative {
		o.delta, o.hasDelta = v, true
		return o, true
	}
	st, ok := t.state(key)
	switch {
	case ok:
		// A counter that restarted: everything since the restart is increase.
		isSum := kind == kindSum
		o.delta = metricstate.SumDelta(st.value, v, isSum && monotonic, isSum && metricstate.Restarted(st.start, dp.StartTimestamp()))
		o.hasDelta = true
	case kind == kindSum && t.isNewSeries(dp.StartTimestamp(), dp.Timestamp()):
		o.delta, o.hasDelta = v, true
	}
	st.start, st.value, st.seen = dp.StartTimestamp(), v, now
	return o, true
}

// cumulativeDelta differences the cumulative point read into t.cur against
// the series' previous one: the increase, or nil for the first point of a
// series with unknown history (a baseline). The result is valid until the
// next point.
func (t *seriesTracker) cumulativeDelta(key uint64, k metricstate.Kind, start, ts pcommon.Timestamp, now time.Time) *metricstate.Histogram {
	st, ok := t.state(key)
	inc := &t.cur
	switch {
	case !ok && !t.isNewSeries(start, ts):
		inc = nil
	case ok && !metricstate.Restarted(st.start, start) && t.inc.Delta(k, &t.cur, &st.hist):
		inc = &t.inc
	}
	// The point becomes the series' last one by a swap, not a copy: t.cur
	// keeps the old buffers for the next point.
	st.hist, t.cur = t.cur, st.hist
	if inc == &t.cur {
		inc = &st.hist
	}
	st.start, st.seen = start, now
	return inc
}

// increase is the point in t.cur as an increase: itself for delta
// temporality, else differenced (nil for a baseline).
func (t *seriesTracker) increase(key uint64, k metricstate.Kind, start, ts pcommon.Timestamp, cumulative bool, now time.Time) *metricstate.Histogram {
	if !cumulative {
		return &t.cur
	}
	return t.cumulativeDelta(key, k, start, ts, now)
}

// histogramObs differences an explicit-bounds histogram point.
func (t *seriesTracker) histogramObs(key uint64, dp pmetric.HistogramDataPoint, cumulative bool, now time.Time) obs {
	t.cur.ReadExplicit(dp)
	h := t.increase(key, metricstate.Explicit, dp.StartTimestamp(), dp.Timestamp(), cumulative, now)
	if h == nil {
		return obs{kind: kindHistogram}
	}
	o := histObs(h, cumulative, t.scratch[:0])
	for i, c := range h.Buckets {
		ub := math.Inf(1)
		if i < len(h.Bounds) {
			ub = h.Bounds[i]
		}
		o.buckets = append(o.buckets, bucket{ub, float64(c)})
	}
	t.scratch = o.buckets
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
func (t *seriesTracker) expHistogramObs(key uint64, dp pmetric.ExponentialHistogramDataPoint, cumulative bool, now time.Time) obs {
	t.cur.ReadExponential(dp)
	h := t.increase(key, metricstate.Exponential, dp.StartTimestamp(), dp.Timestamp(), cumulative, now)
	if h == nil {
		return obs{kind: kindHistogram}
	}
	o := histObs(h, cumulative, t.scratch[:0])
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
	t.scratch = o.buckets
	return o
}

// summaryObs differences a summary's count and sum (summaries are cumulative
// by definition); its quantiles are taken as reported.
func (t *seriesTracker) summaryObs(key uint64, dp pmetric.SummaryDataPoint, now time.Time) obs {
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
	t.cur.ReadSummary(dp)
	if h := t.cumulativeDelta(key, metricstate.Summary, dp.StartTimestamp(), dp.Timestamp(), now); h != nil {
		o.count, o.sum = float64(h.Count), h.Sum
	}
	if o.count > 0 {
		o.value, o.hasValue = o.sum/o.count, true
	}
	return o
}
