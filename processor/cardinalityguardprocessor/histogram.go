package cardinalityguardprocessor // import "github.com/anvil/anvilcol/processor/cardinalityguardprocessor"

import (
	"math"

	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/anvil/anvilcol/internal/expohist"
)

// maxExpBuckets bounds each range of a merged exponential histogram, as the
// SDK's default max_size: merges downscale further until both ranges fit.
const maxExpBuckets = 160

// expBuckets is one range (positive or negative) of an exponential histogram.
type expBuckets struct {
	offset int32
	counts []uint64
}

// histAgg is a histogram value: an explicit-bucket histogram, an exponential
// histogram or a summary (count and sum only). It is the last value of a
// cumulative input series and the running value of an output series.
type histAgg struct {
	count          uint64
	sum            float64
	hasSum         bool
	min, max       float64
	hasMin, hasMax bool

	bounds  []float64 // explicit
	buckets []uint64  // explicit

	scale         int32 // exponential
	zeroCount     uint64
	zeroThreshold float64
	pos, neg      expBuckets
}

func (h *histAgg) setMinMax(hasMin bool, mn float64, hasMax bool, mx float64) {
	h.hasMin, h.min, h.hasMax, h.max = hasMin, mn, hasMax, mx
}

// mergeMinMax keeps min/max only when both sides have them (else the merged
// value would be a guess).
func (h *histAgg) mergeMinMax(o *histAgg) {
	if h.hasMin && o.hasMin {
		h.min = math.Min(h.min, o.min)
	} else {
		h.hasMin = false
	}
	if h.hasMax && o.hasMax {
		h.max = math.Max(h.max, o.max)
	} else {
		h.hasMax = false
	}
}

func (h *histAgg) copyFrom(o *histAgg) {
	b, k := h.buckets[:0], h.bounds[:0]
	p, n := h.pos.counts[:0], h.neg.counts[:0]
	*h = *o
	h.buckets = append(b, o.buckets...)
	h.bounds = append(k, o.bounds...)
	h.pos.counts = append(p, o.pos.counts...)
	h.neg.counts = append(n, o.neg.counts...)
}

// ---- explicit-bucket histograms ----

func readHist(dp pmetric.HistogramDataPoint, h *histAgg) {
	h.count, h.sum, h.hasSum = dp.Count(), dp.Sum(), dp.HasSum()
	h.setMinMax(dp.HasMin(), dp.Min(), dp.HasMax(), dp.Max())
	h.bounds = append(h.bounds[:0], dp.ExplicitBounds().AsRaw()...)
	h.buckets = append(h.buckets[:0], dp.BucketCounts().AsRaw()...)
}

func writeHist(h *histAgg, dp pmetric.HistogramDataPoint) {
	dp.SetCount(h.count)
	if h.hasSum {
		dp.SetSum(h.sum)
	} else {
		dp.RemoveSum()
	}
	if h.hasMin {
		dp.SetMin(h.min)
	} else {
		dp.RemoveMin()
	}
	if h.hasMax {
		dp.SetMax(h.max)
	} else {
		dp.RemoveMax()
	}
	dp.ExplicitBounds().FromRaw(h.bounds)
	dp.BucketCounts().FromRaw(h.buckets)
}

func sameBounds(dp pmetric.HistogramDataPoint, bounds []float64) bool {
	b := dp.ExplicitBounds()
	if b.Len() != len(bounds) {
		return false
	}
	for i, x := range bounds {
		if b.At(i) != x {
			return false
		}
	}
	return true
}

// addHist adds o into h; the bounds are equal (checked by the caller).
func addHist(h, o *histAgg) {
	h.count += o.count
	h.hasSum = h.hasSum && o.hasSum
	h.sum += o.sum
	h.mergeMinMax(o)
	if len(h.buckets) < len(o.buckets) {
		h.buckets = append(h.buckets, make([]uint64, len(o.buckets)-len(h.buckets))...)
	}
	for i, c := range o.buckets {
		h.buckets[i] += c
	}
}

// subHist sets inc = cur - last; false if cur is not a continuation of last
// (a reset).
func subHist(inc, cur, last *histAgg) bool {
	if cur.count < last.count || len(cur.buckets) != len(last.buckets) {
		return false
	}
	inc.buckets = inc.buckets[:0]
	for i, c := range cur.buckets {
		if c < last.buckets[i] {
			return false
		}
		inc.buckets = append(inc.buckets, c-last.buckets[i])
	}
	inc.count, inc.sum, inc.hasSum = cur.count-last.count, cur.sum-last.sum, cur.hasSum
	// min/max of a cumulative series are lifetime values: carry cur's.
	inc.setMinMax(cur.hasMin, cur.min, cur.hasMax, cur.max)
	inc.bounds = append(inc.bounds[:0], cur.bounds...)
	return true
}

// ---- exponential histograms ----

func readExp(dp pmetric.ExponentialHistogramDataPoint, h *histAgg) {
	h.count, h.sum, h.hasSum = dp.Count(), dp.Sum(), dp.HasSum()
	h.setMinMax(dp.HasMin(), dp.Min(), dp.HasMax(), dp.Max())
	h.scale, h.zeroCount, h.zeroThreshold = dp.Scale(), dp.ZeroCount(), dp.ZeroThreshold()
	h.pos.offset = dp.Positive().Offset()
	h.pos.counts = append(h.pos.counts[:0], dp.Positive().BucketCounts().AsRaw()...)
	h.neg.offset = dp.Negative().Offset()
	h.neg.counts = append(h.neg.counts[:0], dp.Negative().BucketCounts().AsRaw()...)
}

func writeExp(h *histAgg, dp pmetric.ExponentialHistogramDataPoint) {
	dp.SetCount(h.count)
	if h.hasSum {
		dp.SetSum(h.sum)
	} else {
		dp.RemoveSum()
	}
	if h.hasMin {
		dp.SetMin(h.min)
	} else {
		dp.RemoveMin()
	}
	if h.hasMax {
		dp.SetMax(h.max)
	} else {
		dp.RemoveMax()
	}
	dp.SetScale(h.scale)
	dp.SetZeroCount(h.zeroCount)
	dp.SetZeroThreshold(h.zeroThreshold)
	dp.Positive().SetOffset(h.pos.offset)
	dp.Positive().BucketCounts().FromRaw(h.pos.counts)
	dp.Negative().SetOffset(h.neg.offset)
	dp.Negative().BucketCounts().FromRaw(h.neg.counts)
}

// bucketRange is the [lo, hi] index range of non-empty storage at a scale
// reduced by `by`; ok is false for an empty range.
func (b *expBuckets) bucketRange(by int32) (lo, hi int32, ok bool) {
	return expohist.Range(b.offset, b.counts, by)
}

// downscale reduces the resolution by `by` scale steps (2^by buckets merge),
// in place.
func (b *expBuckets) downscale(by int32) {
	b.offset, b.counts = expohist.Downscale(b.offset, b.counts, by)
}

// commonScale is the highest scale <= min(a, b) at which both histograms'
// ranges, merged, fit maxExpBuckets.
func commonScale(a, b *histAgg) int32 {
	s := min(a.scale, b.scale)
	for _, pair := range [2][2]*expBuckets{{&a.pos, &b.pos}, {&a.neg, &b.neg}} {
		for {
			lo1, hi1, ok1 := pair[0].bucketRange(a.scale - s)
			lo2, hi2, ok2 := pair[1].bucketRange(b.scale - s)
			lo, hi := lo1, hi1
			switch {
			case !ok1 && !ok2:
				lo, hi = 0, 0
			case !ok1:
				lo, hi = lo2, hi2
			case ok2:
				lo, hi = min(lo1, lo2), max(hi1, hi2)
			}
			if hi-lo+1 <= maxExpBuckets {
				break
			}
			s--
		}
	}
	return s
}

func (b *expBuckets) add(o *expBuckets) {
	if len(o.counts) == 0 {
		return
	}
	if len(b.counts) == 0 {
		b.offset = o.offset
		b.counts = append(b.counts[:0], o.counts...)
		return
	}
	lo := min(b.offset, o.offset)
	hi := max(b.offset+int32(len(b.counts)), o.offset+int32(len(o.counts)))
	if lo < b.offset || hi > b.offset+int32(len(b.counts)) {
		grown := make([]uint64, hi-lo)
		copy(grown[b.offset-lo:], b.counts)
		b.counts, b.offset = grown, lo
	}
	for i, c := range o.counts {
		b.counts[o.offset-b.offset+int32(i)] += c
	}
}

// addExp adds o into h at their common scale. o may be downscaled in place.
func addExp(h, o *histAgg) {
	s := commonScale(h, o)
	h.pos.downscale(h.scale - s)
	h.neg.downscale(h.scale - s)
	o.pos.downscale(o.scale - s)
	o.neg.downscale(o.scale - s)
	h.scale, o.scale = s, s
	h.pos.add(&o.pos)
	h.neg.add(&o.neg)
	h.count += o.count
	h.hasSum = h.hasSum && o.hasSum
	h.sum += o.sum
	h.zeroCount += o.zeroCount
	h.zeroThreshold = math.Max(h.zeroThreshold, o.zeroThreshold)
	h.mergeMinMax(o)
}

// subExpRange sets inc = cur - last for one range at cur's scale (last already
// downscaled to it); false if last is not contained in cur (a reset).
func subExpRange(inc, cur, last *expBuckets) bool {
	inc.offset = cur.offset
	inc.counts = append(inc.counts[:0], cur.counts...)
	for i, c := range last.counts {
		j := last.offset + int32(i) - cur.offset
		if c == 0 {
			continue
		}
		if j < 0 || int(j) >= len(inc.counts) || inc.counts[j] < c {
			return false
		}
		inc.counts[j] -= c
	}
	return true
}

// subExp sets inc = cur - last; false on a reset. last is downscaled in place
// to cur's scale (an SDK may lower a cumulative series' scale over time).
func subExp(inc, cur, last *histAgg) bool {
	if cur.count < last.count || cur.zeroCount < last.zeroCount || cur.scale > last.scale {
		return false
	}
	last.pos.downscale(last.scale - cur.scale)
	last.neg.downscale(last.scale - cur.scale)
	last.scale = cur.scale
	if !subExpRange(&inc.pos, &cur.pos, &last.pos) || !subExpRange(&inc.neg, &cur.neg, &last.neg) {
		return false
	}
	inc.scale = cur.scale
	inc.count, inc.sum, inc.hasSum = cur.count-last.count, cur.sum-last.sum, cur.hasSum
	inc.zeroCount, inc.zeroThreshold = cur.zeroCount-last.zeroCount, cur.zeroThreshold
	inc.setMinMax(cur.hasMin, cur.min, cur.hasMax, cur.max)
	return true
}

// ---- summaries: count and sum only ----

func readSummary(dp pmetric.SummaryDataPoint, h *histAgg) {
	h.count, h.sum, h.hasSum = dp.Count(), dp.Sum(), true
}

func subSummary(inc, cur, last *histAgg) bool {
	if cur.count < last.count {
		return false
	}
	inc.count, inc.sum, inc.hasSum = cur.count-last.count, cur.sum-last.sum, true
	return true
}

func addSummary(h, o *histAgg) {
	h.count += o.count
	h.sum += o.sum
}
