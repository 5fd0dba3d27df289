package anvilreceiver // import "github.com/anvil/anvilcol/receiver/anvilreceiver"

import (
	"math"

	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/anvil/anvilcol/internal/expohist"
)

// expoMaxScale is the scale an exponential histogram starts at; it only ever
// decreases, as the OpenTelemetry SDKs do, to keep at most maxSize buckets.
const expoMaxScale = 20

// expoBuckets are the counts of consecutive bucket indexes from offset.
type expoBuckets struct {
	offset int32
	counts []uint64
}

// expoHist is a base-2 exponential histogram with automatic downscaling.
type expoHist struct {
	scale   int32
	maxSize int
	zero    uint64
	pos     expoBuckets
	neg     expoBuckets
}

func newExpoHist(maxSize int) *expoHist {
	return &expoHist{scale: expoMaxScale, maxSize: maxSize}
}

func (h *expoHist) reset() {
	h.scale = expoMaxScale
	h.zero = 0
	h.pos = expoBuckets{counts: h.pos.counts[:0]}
	h.neg = expoBuckets{counts: h.neg.counts[:0]}
}

func (h *expoHist) record(v float64) {
	if v == 0 {
		h.zero++
		return
	}
	b := &h.pos
	if v < 0 {
		b = &h.neg
		v = -v
	}
	idx := expoIndex(v, h.scale)
	if d := b.downscaleNeeded(idx, h.maxSize); d > 0 {
		h.pos.downscale(d)
		h.neg.downscale(d)
		h.scale -= d
		idx = expoIndex(v, h.scale)
	}
	b.incr(idx)
}

// downscaleNeeded returns by how much the scale must drop for idx to fit.
func (b *expoBuckets) downscaleNeeded(idx int32, maxSize int) int32 {
	if len(b.counts) == 0 {
		return 0
	}
	lo, hi := b.offset, b.offset+int32(len(b.counts))-1
	lo, hi = min(lo, idx), max(hi, idx)
	var d int32
	for int(hi>>d)-int(lo>>d)+1 > maxSize {
		d++
	}
	return d
}

// downscale merges the buckets into a scale d steps coarser, in place.
func (b *expoBuckets) downscale(d int32) {
	b.offset, b.counts = expohist.Downscale(b.offset, b.counts, d)
}

func (b *expoBuckets) incr(idx int32) {
	switch {
	case len(b.counts) == 0:
		b.offset = idx
		b.counts = append(b.counts[:0], 1)
	case idx < b.offset:
		grow := int(b.offset - idx)
		counts := make([]uint64, grow+len(b.counts))
		copy(counts[grow:], b.counts)
		counts[0] = 1
		b.offset, b.counts = idx, counts
	default:
		j := int(idx - b.offset)
		for len(b.counts) <= j {
			b.counts = append(b.counts, 0)
		}
		b.counts[j]++
	}
}

// expoIndex maps v > 0 to its bucket index at scale: bucket i holds
// (base^i, base^(i+1)] with base = 2^(2^-scale).
func expoIndex(v float64, scale int32) int32 {
	frac, exp := math.Frexp(v) // v = frac * 2^exp, frac in [0.5, 1)
	if scale <= 0 {
		e := exp - 1
		if frac == 0.5 { // exact power of two: upper bound of the bucket below
			e--
		}
		return int32(e) >> -scale
	}
	if frac == 0.5 {
		return int32((exp-1)<<scale) - 1
	}
	return int32(math.Ceil(math.Log2(v)*math.Ldexp(1, int(scale)))) - 1
}

func (h *expoHist) copyTo(dp pmetric.ExponentialHistogramDataPoint) {
	dp.SetScale(h.scale)
	dp.SetZeroCount(h.zero)
	dp.Positive().SetOffset(h.pos.offset)
	dp.Positive().BucketCounts().FromRaw(h.pos.counts)
	dp.Negative().SetOffset(h.neg.offset)
	dp.Negative().BucketCounts().FromRaw(h.neg.counts)
}
