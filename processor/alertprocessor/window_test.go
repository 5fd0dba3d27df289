package alertprocessor

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

// The sample sketch answers percentiles within its 1% relative accuracy, for
// negative and positive samples, merged or not, and survives a save/load.
func TestSampleSketchPercentilesWithinOnePercent(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 50 {
		a, b := newSketch(), newSketch()
		var all []float64
		for i := range 1 + r.IntN(2000) {
			v := math.Exp(r.NormFloat64() * 3)
			if r.IntN(3) == 0 {
				v = -v
			}
			all = append(all, v)
			if i%2 == 0 {
				a.add(v, 1)
			} else {
				b.add(v, 1)
			}
		}
		a.merge(b)
		newAcc := newAccumulator(StatP50, nil)
		saved := saveSlot(&slot{acc: &quantileAcc{stat: StatP50, q: 0.5, samples: a}})
		slot, err := loadSlot(saved, newAcc)
		require.NoError(t, err)
		loaded := slot.acc.(*quantileAcc).samples
		slices.Sort(all)
		for _, q := range []float64{0, 0.5, 0.9, 0.99, 1} {
			want := all[int(q*float64(len(all)-1))]
			for _, s := range []*sketch{a, loaded} {
				got := s.quantile(q)
				require.InDelta(t, want, got, 0.0101*math.Abs(want), "q=%v n=%d", q, len(all))
			}
		}
		require.Equal(t, float64(len(all)), loaded.total())
	}
}
