package metricstate

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestBoundary(t *testing.T) {
	tests := []struct {
		scale, index int32
		want         float64
	}{
		{0, 0, 1}, {0, 3, 8}, {0, -2, 0.25},
		{-1, 1, 4}, {-2, -1, 1.0 / 16},
		{1, 1, math.Sqrt2}, {1, 2, 2}, {2, 4, 2}, {3, -8, 0.5},
	}
	for _, tt := range tests {
		if got := Boundary(tt.scale, tt.index); math.Abs(got-tt.want) > 1e-12*tt.want {
			t.Errorf("Boundary(%d, %d) = %v, want %v", tt.scale, tt.index, got, tt.want)
		}
	}
}

// Every magnitude lies in the bucket Index names: (Boundary(i), Boundary(i+1)].
func TestIndexPutsValuesInTheirBucket(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 20_000 {
		v := math.Exp(r.NormFloat64() * 10)
		for _, s := range []int32{-3, -1, 0, 1, 3, 8, 20} {
			i := Index(v, s)
			lo, hi := Boundary(s, i), Boundary(s, i+1)
			// Within one ulp-ish at high scales where Boundary is inexact.
			require.Truef(t, v > lo*(1-1e-12) && v <= hi*(1+1e-12), "v=%v scale=%d index=%d (%v, %v]", v, s, i, lo, hi)
		}
	}
	assert.Equal(t, int32(-1), Index(1, 0), "1 is the upper bound of bucket -1")
	assert.Equal(t, int32(-2), Index(0.5, 0))
	assert.Equal(t, int32(-2), Index(0.3, 0))
}

func TestDownscaleMergesPairsInPlaceAndKeepsTotals(t *testing.T) {
	// indices -3..4 at scale s -> by 1 -> indices -2..2
	b := Buckets{Offset: -3, Counts: []uint64{1, 2, 3, 4, 5, 6, 7, 8}}
	b.Downscale(1)
	assert.Equal(t, Buckets{Offset: -2, Counts: []uint64{1, 5, 9, 13, 8}}, b) // -2:{-3} -1:{-2,-1} 0:{0,1} 1:{2,3} 2:{4}
	c := Buckets{Offset: 5, Counts: []uint64{1, 1}}
	c.Downscale(0)
	assert.Equal(t, Buckets{Offset: 5, Counts: []uint64{1, 1}}, c, "by 0 changes nothing")
	_, _, ok := (&Buckets{}).Range(1)
	assert.False(t, ok, "empty range")
}

func TestExponentialAddFitsMaxBuckets(t *testing.T) {
	a, b := &Histogram{Scale: 5}, &Histogram{Scale: 5}
	a.Pos = Buckets{Offset: 0, Counts: make([]uint64, 100)}
	b.Pos = Buckets{Offset: 1000, Counts: make([]uint64, 100)}
	for i := range a.Pos.Counts {
		a.Pos.Counts[i], b.Pos.Counts[i] = 1, 2
	}
	a.Count, b.Count = 100, 200
	a.Add(Exponential, b)
	assert.LessOrEqual(t, len(a.Pos.Counts), DefaultMaxBuckets)
	var n uint64
	for _, c := range a.Pos.Counts {
		n += c
	}
	assert.Equal(t, uint64(300), n, "downscaling never loses counts")
	assert.Less(t, a.Scale, int32(5))
}

func TestIndexAtBucketBoundaries(t *testing.T) {
	// scale 1: base sqrt(2); 2 is the upper bound of bucket 1, 2.1 is in bucket 2.
	assert.Equal(t, int32(1), Index(2, 1))
	assert.Equal(t, int32(2), Index(2.1, 1))
	assert.Equal(t, int32(-1), Index(1, 1))
	assert.Equal(t, int32(0), Index(1.2, 1))
	// scale 0: 8 is the upper bound of bucket 2, 9 in bucket 3.
	assert.Equal(t, int32(2), Index(8, 0))
	assert.Equal(t, int32(3), Index(9, 0))
}

// Index is the reference mapping of the tests: a magnitude v > 0 to its
// bucket index at scale (bucket i holds (base^i, base^(i+1)]).
func Index(v float64, scale int32) int32 {
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

// Each calls f for every non-empty bucket: its index and count.
func (b *Buckets) Each(f func(idx int32, count uint64)) {
	for i, c := range b.Counts {
		if c != 0 {
			f(b.Offset+int32(i), c)
		}
	}
}
