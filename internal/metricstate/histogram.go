package metricstate // import "github.com/anvil/anvilcol/internal/metricstate"

import (
	"math"
	"slices"
	"sort"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

// Kind is the kind of value a Histogram holds.
type Kind uint8

const (
	Explicit    Kind = iota // explicit-bucket histogram
	Exponential             // exponential histogram
	Summary                 // summary: count and sum only
)

// DefaultMaxBuckets bounds each range of a merged exponential histogram, as
// the SDKs' default max_size: merges downscale until both ranges fit.
const DefaultMaxBuckets = 160

// Histogram is a histogram value: an explicit-bucket histogram, an
// exponential histogram or a summary (count and sum). It serves as the last
// point of a cumulative series, as an increase, and as a running aggregate.
type Histogram struct {
	Count          uint64
	Sum            float64
	HasSum         bool
	Min, Max       float64
	HasMin, HasMax bool

	Bounds  []float64 // explicit: upper bounds; Buckets has one more entry (+Inf)
	Buckets []uint64

	Scale         int32 // exponential
	ZeroCount     uint64
	ZeroThreshold float64
	Pos, Neg      Buckets
}

// CopyFrom makes h a copy of o, reusing h's slices.
func (h *Histogram) CopyFrom(o *Histogram) {
	b, k := h.Buckets[:0], h.Bounds[:0]
	p, n := h.Pos.Counts[:0], h.Neg.Counts[:0]
	*h = *o
	h.Buckets = append(b, o.Buckets...)
	h.Bounds = append(k, o.Bounds...)
	h.Pos.Counts = append(p, o.Pos.Counts...)
	h.Neg.Counts = append(n, o.Neg.Counts...)
}

// Reset empties h for a new interval of recording, keeping explicit bounds.
func (h *Histogram) Reset() {
	h.Count, h.Sum, h.HasSum = 0, 0, false
	h.Min, h.Max, h.HasMin, h.HasMax = 0, 0, false, false
	clear(h.Buckets)
	h.Scale, h.ZeroCount = MaxScale, 0
	h.Pos = Buckets{Counts: h.Pos.Counts[:0]}
	h.Neg = Buckets{Counts: h.Neg.Counts[:0]}
}

func (h *Histogram) setMinMax(hasMin bool, mn float64, hasMax bool, mx float64) {
	h.HasMin, h.Min, h.HasMax, h.Max = hasMin, mn, hasMax, mx
}

// mergeMinMax keeps min/max only when both sides have them (else the merged
// value would be a guess); an empty side changes nothing. Called before the
// counts are added.
func (h *Histogram) mergeMinMax(o *Histogram) {
	switch {
	case o.Count == 0:
		return
	case h.Count == 0:
		h.setMinMax(o.HasMin, o.Min, o.HasMax, o.Max)
		return
	}
	if h.HasMin && o.HasMin {
		h.Min = math.Min(h.Min, o.Min)
	} else {
		h.HasMin = false
	}
	if h.HasMax && o.HasMax {
		h.Max = math.Max(h.Max, o.Max)
	} else {
		h.HasMax = false
	}
}

func (h *Histogram) observe(v float64) {
	if h.Count == 0 {
		h.Min, h.Max = v, v
	}
	h.Count++
	h.Sum += v
	h.Min, h.Max = math.Min(h.Min, v), math.Max(h.Max, v)
	h.HasSum, h.HasMin, h.HasMax = true, true, true
}

// NewExplicit returns an empty explicit-bucket histogram with bounds.
func NewExplicit(bounds []float64) *Histogram {
	return &Histogram{Bounds: bounds, Buckets: make([]uint64, len(bounds)+1)}
}

// RecordExplicit adds one value: bucket i holds (Bounds[i-1], Bounds[i]],
// the last (Bounds[n-1], +Inf).
func (h *Histogram) RecordExplicit(v float64) {
	h.observe(v)
	h.Buckets[sort.SearchFloat64s(h.Bounds, v)]++
}

// ---- reading and writing data points ----

// ReadExplicit sets h from an explicit-bucket histogram point.
func (h *Histogram) ReadExplicit(dp pmetric.HistogramDataPoint) {
	h.Count, h.Sum, h.HasSum = dp.Count(), dp.Sum(), dp.HasSum()
	h.setMinMax(dp.HasMin(), dp.Min(), dp.HasMax(), dp.Max())
	h.Bounds = appendFloats(h.Bounds[:0], dp.ExplicitBounds())
	h.Buckets = appendCounts(h.Buckets[:0], dp.BucketCounts())
}

// WriteExplicit sets an explicit-bucket histogram point's value from h.
func (h *Histogram) WriteExplicit(dp pmetric.HistogramDataPoint) {
	writeStats(h, dp)
	dp.ExplicitBounds().FromRaw(h.Bounds)
	dp.BucketCounts().FromRaw(h.Buckets)
}

// statsPoint is a histogram point's count, sum, min and max.
type statsPoint interface {
	pmetric.HistogramDataPoint | pmetric.ExponentialHistogramDataPoint
	SetCount(uint64)
	SetSum(float64)
	RemoveSum()
	SetMin(float64)
	RemoveMin()
	SetMax(float64)
	RemoveMax()
}

func writeStats[P statsPoint](h *Histogram, dp P) {
	dp.SetCount(h.Count)
	if h.HasSum {
		dp.SetSum(h.Sum)
	} else {
		dp.RemoveSum()
	}
	if h.HasMin {
		dp.SetMin(h.Min)
	} else {
		dp.RemoveMin()
	}
	if h.HasMax {
		dp.SetMax(h.Max)
	} else {
		dp.RemoveMax()
	}
}

// ReadExponential sets h from an exponential histogram point.
func (h *Histogram) ReadExponential(dp pmetric.ExponentialHistogramDataPoint) {
	h.Count, h.Sum, h.HasSum = dp.Count(), dp.Sum(), dp.HasSum()
	h.setMinMax(dp.HasMin(), dp.Min(), dp.HasMax(), dp.Max())
	h.Scale, h.ZeroCount, h.ZeroThreshold = dp.Scale(), dp.ZeroCount(), dp.ZeroThreshold()
	h.Pos.Offset = dp.Positive().Offset()
	h.Pos.Counts = appendCounts(h.Pos.Counts[:0], dp.Positive().BucketCounts())
	h.Neg.Offset = dp.Negative().Offset()
	h.Neg.Counts = appendCounts(h.Neg.Counts[:0], dp.Negative().BucketCounts())
}

// WriteExponential sets an exponential histogram point's value from h.
func (h *Histogram) WriteExponential(dp pmetric.ExponentialHistogramDataPoint) {
	writeStats(h, dp)
	dp.SetScale(h.Scale)
	dp.SetZeroCount(h.ZeroCount)
	dp.SetZeroThreshold(h.ZeroThreshold)
	dp.Positive().SetOffset(h.Pos.Offset)
	dp.Positive().BucketCounts().FromRaw(h.Pos.Counts)
	dp.Negative().SetOffset(h.Neg.Offset)
	dp.Negative().BucketCounts().FromRaw(h.Neg.Counts)
}

// appendFloats and appendCounts append a pdata slice's values without the
// copy AsRaw makes (and without generics: a method call through a type
// parameter is an indirect call per element).
func appendFloats(s []float64, p pcommon.Float64Slice) []float64 {
	for i := range p.Len() {
		s = append(s, p.At(i))
	}
	return s
}

func appendCounts(s []uint64, p pcommon.UInt64Slice) []uint64 {
	for i := range p.Len() {
		s = append(s, p.At(i))
	}
	return s
}

// ReadSummary sets h from a summary point (count and sum; quantiles cannot
// be added or subtracted).
func (h *Histogram) ReadSummary(dp pmetric.SummaryDataPoint) {
	h.Count, h.Sum, h.HasSum = dp.Count(), dp.Sum(), true
}

// ---- arithmetic ----

// Add adds o into h. Explicit histograms must have equal bounds (SameBounds);
// exponential ones are merged at their common scale (o may be downscaled in
// place).
func (h *Histogram) Add(k Kind, o *Histogram) {
	if k != Summary {
		h.mergeMinMax(o)
	}
	h.Count += o.Count
	h.HasSum = h.HasSum && o.HasSum
	h.Sum += o.Sum
	switch k {
	case Explicit:
		if len(h.Buckets) < len(o.Buckets) {
			h.Buckets = append(h.Buckets, make([]uint64, len(o.Buckets)-len(h.Buckets))...)
		}
		for i, c := range o.Buckets {
			h.Buckets[i] += c
		}
	case Exponential:
		s := commonScale(h, o, DefaultMaxBuckets)
		h.Pos.Downscale(h.Scale - s)
		h.Neg.Downscale(h.Scale - s)
		o.Pos.Downscale(o.Scale - s)
		o.Neg.Downscale(o.Scale - s)
		h.Scale, o.Scale = s, s
		h.Pos.Add(&o.Pos)
		h.Neg.Add(&o.Neg)
		h.ZeroCount += o.ZeroCount
		h.ZeroThreshold = math.Max(h.ZeroThreshold, o.ZeroThreshold)
	}
}

// SameBounds reports whether two explicit histograms can be added.
func SameBounds(a, b *Histogram) bool { return slices.Equal(a.Bounds, b.Bounds) }

// Delta sets h = cur - last, the increase of a cumulative series. It reports
// false when cur does not continue last (a reset: fewer observations, a
// bucket that went down, other bounds, or a higher exponential scale); the
// increase is then cur itself. last may be downscaled in place to cur's
// scale (an SDK may lower a series' scale over time). min and max of a
// cumulative series are lifetime values: h carries cur's.
func (h *Histogram) Delta(k Kind, cur, last *Histogram) bool {
	if cur.Count < last.Count {
		return false
	}
	switch k {
	case Explicit:
		if len(cur.Buckets) != len(last.Buckets) || !SameBounds(cur, last) {
			return false
		}
		h.Buckets = h.Buckets[:0]
		for i, c := range cur.Buckets {
			if c < last.Buckets[i] {
				return false
			}
			h.Buckets = append(h.Buckets, c-last.Buckets[i])
		}
		h.Bounds = append(h.Bounds[:0], cur.Bounds...)
	case Exponential:
		if len(last.Pos.Counts)+len(last.Neg.Counts) == 0 {
			last.Scale = cur.Scale // no buckets (empty, or zeros only): any scale
		}
		if cur.ZeroCount < last.ZeroCount || cur.Scale > last.Scale {
			return false
		}
		last.Pos.Downscale(last.Scale - cur.Scale)
		last.Neg.Downscale(last.Scale - cur.Scale)
		last.Scale = cur.Scale
		if !h.Pos.sub(&cur.Pos, &last.Pos) || !h.Neg.sub(&cur.Neg, &last.Neg) {
			return false
		}
		h.Scale = cur.Scale
		h.ZeroCount, h.ZeroThreshold = cur.ZeroCount-last.ZeroCount, cur.ZeroThreshold
	}
	h.Count, h.Sum, h.HasSum = cur.Count-last.Count, cur.Sum-last.Sum, cur.HasSum
	h.setMinMax(cur.HasMin, cur.Min, cur.HasMax, cur.Max)
	return true
}

// commonScale is the highest scale <= min(a, b) at which both histograms'
// ranges, merged, fit maxBuckets.
func commonScale(a, b *Histogram, maxBuckets int32) int32 {
	// A histogram without buckets (empty, or zeros only) does not lower the
	// other's scale.
	s := min(a.Scale, b.Scale)
	switch {
	case len(a.Pos.Counts)+len(a.Neg.Counts) == 0:
		s = b.Scale
	case len(b.Pos.Counts)+len(b.Neg.Counts) == 0:
		s = a.Scale
	}
	for _, pair := range [2][2]*Buckets{{&a.Pos, &b.Pos}, {&a.Neg, &b.Neg}} {
		for {
			lo1, hi1, ok1 := pair[0].Range(a.Scale - s)
			lo2, hi2, ok2 := pair[1].Range(b.Scale - s)
			lo, hi := lo1, hi1
			switch {
			case !ok1 && !ok2:
				lo, hi = 0, 0
			case !ok1:
				lo, hi = lo2, hi2
			case ok2:
				lo, hi = min(lo1, lo2), max(hi1, hi2)
			}
			if hi-lo+1 <= maxBuckets {
				break
			}
			s--
		}
	}
	return s
}
