// Package expohist holds the exponential-histogram bucket arithmetic shared by
// the components that build, merge, convert or read OpenTelemetry exponential
// histograms (anvil receiver, cardinality guard, foundation exporter, alert
// processor): bucket i at scale s covers (base^i, base^(i+1)] with
// base = 2^(2^-s).
package expohist // import "github.com/anvil/anvilcol/internal/expohist"

import "math"

// Boundary returns base^index at scale: the lower boundary of bucket index
// (and the upper boundary of bucket index-1). Exact for scale <= 0.
func Boundary(scale int32, index int32) float64 {
	if scale <= 0 {
		return math.Ldexp(1, int(index)<<uint(-scale))
	}
	return math.Exp2(float64(index) / float64(int64(1)<<uint(scale)))
}

// Range returns the first and last bucket index of the buckets (offset,
// counts) after reducing the scale by `by` steps; ok is false when empty.
func Range(offset int32, counts []uint64, by int32) (lo, hi int32, ok bool) {
	if len(counts) == 0 {
		return 0, 0, false
	}
	return offset >> by, (offset + int32(len(counts)) - 1) >> by, true
}

// Downscale merges the buckets (offset, counts) into a scale `by` steps
// coarser (2^by buckets become one), in place: the new index of bucket i is
// never above i. It returns the new offset and counts (a prefix of counts).
func Downscale(offset int32, counts []uint64, by int32) (int32, []uint64) {
	if by <= 0 || len(counts) == 0 {
		return offset, counts
	}
	lo, hi, _ := Range(offset, counts, by)
	prev := int32(-1)
	for i, c := range counts {
		j := (offset+int32(i))>>by - lo
		if j != prev {
			counts[j], prev = c, j
		} else {
			counts[j] += c
		}
	}
	return lo, counts[:hi-lo+1]
}
