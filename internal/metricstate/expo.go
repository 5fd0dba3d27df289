package metricstate // import "github.com/anvil/anvilcol/internal/metricstate"

import "math"

// MaxScale is the highest exponential scale (the scale a Recorder starts at).
const MaxScale = 20

// Boundary returns base^index at scale: the lower boundary of bucket index
// (and the upper boundary of bucket index-1). Exact for scale <= 0.
func Boundary(scale int32, index int32) float64 {
	if scale <= 0 {
		return math.Ldexp(1, int(index)<<uint(-scale))
	}
	return math.Exp2(float64(index) / float64(int64(1)<<uint(scale)))
}

// Buckets is one range (positive or negative) of an exponential histogram:
// the counts of consecutive bucket indexes from Offset.
type Buckets struct {
	Offset int32
	Counts []uint64
}

// Range is the [lo, hi] index range of the buckets at a scale reduced by
// `by`; ok is false when empty.
func (b *Buckets) Range(by int32) (lo, hi int32, ok bool) {
	if len(b.Counts) == 0 {
		return 0, 0, false
	}
	return b.Offset >> by, (b.Offset + int32(len(b.Counts)) - 1) >> by, true
}

// Downscale merges the buckets into a scale `by` steps coarser (2^by buckets
// become one), in place: the new index of bucket i is never above i.
func (b *Buckets) Downscale(by int32) {
	if by <= 0 || len(b.Counts) == 0 {
		return
	}
	lo, hi, _ := b.Range(by)
	prev := int32(-1)
	for i, c := range b.Counts {
		j := (b.Offset+int32(i))>>by - lo
		if j != prev {
			b.Counts[j], prev = c, j
		} else {
			b.Counts[j] += c
		}
	}
	b.Offset, b.Counts = lo, b.Counts[:hi-lo+1]
}

// Add adds o (at the same scale) into b.
func (b *Buckets) Add(o *Buckets) {
	if len(o.Counts) == 0 {
		return
	}
	if len(b.Counts) == 0 {
		b.Offset = o.Offset
		b.Counts = append(b.Counts[:0], o.Counts...)
		return
	}
	lo := min(b.Offset, o.Offset)
	hi := max(b.Offset+int32(len(b.Counts)), o.Offset+int32(len(o.Counts)))
	if lo < b.Offset || hi > b.Offset+int32(len(b.Counts)) {
		grown := make([]uint64, hi-lo)
		copy(grown[b.Offset-lo:], b.Counts)
		b.Counts, b.Offset = grown, lo
	}
	for i, c := range o.Counts {
		b.Counts[o.Offset-b.Offset+int32(i)] += c
	}
}

// sub sets b = cur - last (same scale); false if last is not contained in
// cur (a reset).
func (b *Buckets) sub(cur, last *Buckets) bool {
	b.Offset = cur.Offset
	b.Counts = append(b.Counts[:0], cur.Counts...)
	for i, c := range last.Counts {
		if c == 0 {
			continue
		}
		j := last.Offset + int32(i) - cur.Offset
		if j < 0 || int(j) >= len(b.Counts) || b.Counts[j] < c {
			return false
		}
		b.Counts[j] -= c
	}
	return true
}
