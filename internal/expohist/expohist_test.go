package expohist

import (
	"math"
	"testing"
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

func TestDownscaleMergesPairsInPlaceAndKeepsTotals(t *testing.T) {
	// indices -3..4 at scale s -> by 1 -> indices -2..2
	counts := []uint64{1, 2, 3, 4, 5, 6, 7, 8}
	off, out := Downscale(-3, counts, 1)
	want := []uint64{1, 5, 9, 13, 8} // -2:{-3} -1:{-2,-1} 0:{0,1} 1:{2,3} 2:{4}
	if off != -2 || len(out) != len(want) {
		t.Fatalf("Downscale = offset %d counts %v, want -2 %v", off, out, want)
	}
	for i := range want {
		if out[i] != want[i] {
			t.Fatalf("Downscale counts %v, want %v", out, want)
		}
	}
	if off, out := Downscale(5, []uint64{1, 1}, 0); off != 5 || len(out) != 2 {
		t.Fatal("by 0 must change nothing")
	}
	if _, _, ok := Range(0, nil, 1); ok {
		t.Fatal("empty range must not be ok")
	}
}
