package alertprocessor

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
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

func TestQuantileFromBucketsInOneOrManyLayoutsAcrossRestarts(t *testing.T) {
	newAcc := newAccumulator(StatP50, nil)
	now := time.Unix(100, 0)
	a, b := newAcc(), newAcc()
	a.addMetric(obs{kind: kindHistogram, count: 4, buckets: []bucket{{10, 2}, {20, 2}, {math.Inf(1), 0}}}, now)
	a.addMetric(obs{kind: kindHistogram, count: 4, buckets: []bucket{{10, 2}, {20, 2}, {math.Inf(1), 0}}}, now)
	b.addMetric(obs{kind: kindHistogram, count: 4, buckets: []bucket{{10, 0}, {20, 0}, {math.Inf(1), 0}}}, now)
	b.addMetric(obs{kind: kindHistogram, count: 4, buckets: []bucket{{5, 4}, {math.Inf(1), 0}}}, now) // another layout
	total := newAcc()
	total.merge(roundTrip(t, a, newAcc))
	total.merge(roundTrip(t, b, newAcc))
	v, ok := total.value(0)
	require.True(t, ok)
	assert.InDelta(t, 7.5, v, 1e-9, "12 observations: 4 <= 5, 4 in (5, 10], 4 in (10, 20]; rank 6 is halfway into (5, 10]")

	newMax := newAccumulator(StatMax, nil)
	m := newMax()
	m.addMetric(obs{kind: kindSummary, count: 2, hasMinMax: true, min: 1, max: 9, quant: map[float64]float64{0: 1, 1: 9}}, now)
	v, ok = roundTrip(t, m, newMax).value(0)
	require.True(t, ok)
	assert.Equal(t, 9.0, v)
}
