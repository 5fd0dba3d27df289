package metricstate

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// randomValues draws n values over many magnitudes, both signs, with zeros.
func randomValues(r *rand.Rand, n int) []float64 {
	vs := make([]float64, n)
	for i := range vs {
		switch r.IntN(10) {
		case 0:
			vs[i] = 0
		case 1, 2, 3:
			vs[i] = -math.Exp(r.NormFloat64() * 4) // negative, often of magnitude below 1
		default:
			vs[i] = math.Exp(r.NormFloat64() * 4)
		}
	}
	return vs
}

type bucketKey struct {
	neg bool
	idx int32
}

// expoAt returns h's buckets at scale s (<= h.Scale) without changing h.
func expoAt(h *Histogram, s int32) map[bucketKey]uint64 {
	m := map[bucketKey]uint64{}
	for _, r := range []struct {
		neg bool
		b   *Buckets
	}{{false, &h.Pos}, {true, &h.Neg}} {
		r.b.Each(func(i int32, c uint64) { m[bucketKey{r.neg, i >> (h.Scale - s)}] += c })
	}
	return m
}

func total(m map[bucketKey]uint64) (n uint64) {
	for _, c := range m {
		n += c
	}
	return n
}

func TestRecordExponentialKeepsEveryValueInItsBucket(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for trial := range 200 {
		maxSize := 4 + r.IntN(160)
		vs := randomValues(r, 1+r.IntN(500))
		h := recorded(vs, maxSize)
		want := map[bucketKey]uint64{}
		var zero uint64
		var sum float64
		for _, v := range vs {
			sum += v
			switch {
			case v == 0:
				zero++
			case v < 0:
				want[bucketKey{true, Index(-v, h.Scale)}]++
			default:
				want[bucketKey{false, Index(v, h.Scale)}]++
			}
		}
		require.Equal(t, want, expoAt(h, h.Scale), "trial %d", trial)
		require.Equal(t, zero, h.ZeroCount)
		require.Equal(t, uint64(len(vs)), h.Count)
		require.Equal(t, uint64(len(vs)), total(want)+zero)
		require.InDelta(t, sum, h.Sum, 1e-9*math.Max(1, math.Abs(sum)))
		require.LessOrEqual(t, len(h.Pos.Counts), maxSize)
		require.LessOrEqual(t, len(h.Neg.Counts), maxSize)
	}
}

// Delta temporality: adding the points of a series gives what recording all
// their values in one histogram gives (at the common scale).
func TestAddEqualsRecordingTogether(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for trial := range 200 {
		var vs []float64
		sum := &Histogram{}
		for i := range 1 + r.IntN(6) {
			part := randomValues(r, r.IntN(200))
			vs = append(vs, part...)
			if i == 0 {
				sum.CopyFrom(recorded(part, DefaultMaxBuckets))
				continue
			}
			sum.Add(Exponential, recorded(part, DefaultMaxBuckets))
		}
		all := recorded(vs, DefaultMaxBuckets)
		s := min(sum.Scale, all.Scale)
		require.Equal(t, expoAt(all, s), expoAt(sum, s), "trial %d", trial)
		require.Equal(t, all.Count, sum.Count)
		require.Equal(t, all.ZeroCount, sum.ZeroCount)
		require.InDelta(t, all.Sum, sum.Sum, 1e-9*math.Max(1, math.Abs(all.Sum)))
		if all.Count > 0 {
			require.True(t, sum.HasMin && sum.HasMax)
			require.Equal(t, all.Min, sum.Min)
			require.Equal(t, all.Max, sum.Max)
		}
	}
}

// Cumulative temporality: a series built by adding random increases (with
// restarts), differenced point by point, gives back every increase, each one
// non-negative, and the outputs add up to the inputs. For every kind.
func TestDeltaRecoversEveryIncrease(t *testing.T) {
	bounds := []float64{-10, -1, -0.1, 0, 0.1, 1, 10, 100}
	for _, k := range []Kind{Explicit, Exponential, Summary} {
		r := rand.New(rand.NewPCG(7, uint64(k)))
		for trial := range 100 {
			fresh := func() *Histogram {
				if k == Explicit {
					return NewExplicit(bounds)
				}
				return &Histogram{Scale: MaxScale}
			}
			increase := func(vs []float64) *Histogram {
				if k == Exponential {
					return recorded(vs, 40)
				}
				h := fresh()
				for _, v := range vs {
					if k == Explicit {
						h.RecordExplicit(v)
					} else {
						h.observe(v)
					}
				}
				return h
			}
			cum, last := fresh(), fresh()
			var start uint32 = 1
			lastStart := start
			inSum, outSum := fresh(), fresh()
			var inCount, outCount uint64
			for step := range 30 {
				inc := increase(randomValues(r, r.IntN(50)))
				if r.IntN(8) == 0 {
					cum, start = fresh(), start+1 // the writer restarted
				}
				cum.Add(k, copyOf(inc))
				inSum.Add(k, copyOf(inc))
				inCount += inc.Count

				out := &Histogram{}
				if step == 0 || Restarted(lastStart, start) || !out.Delta(k, cum, copyOf(last)) {
					out.CopyFrom(cum)
				}
				require.Equal(t, inc.Count, out.Count, "kind %d trial %d step %d", k, trial, step)
				require.InDelta(t, inc.Sum, out.Sum, 1e-6*math.Max(1, math.Abs(inc.Sum)))
				switch k {
				case Explicit:
					require.Equal(t, inc.Buckets, out.Buckets)
				case Exponential:
					s := min(inc.Scale, out.Scale)
					require.Equal(t, expoAt(inc, s), expoAt(out, s))
					require.Equal(t, inc.ZeroCount, out.ZeroCount)
				}
				outSum.Add(k, copyOf(out))
				outCount += out.Count
				last.CopyFrom(cum)
				lastStart = start
			}
			require.Equal(t, inCount, outCount)
			require.Equal(t, inSum.Count, outSum.Count)
			if k == Exponential {
				s := min(inSum.Scale, outSum.Scale)
				require.Equal(t, expoAt(inSum, s), expoAt(outSum, s))
			}
		}
	}
}

// recorded is the histogram of vs as a Recorder of maxSize records it.
func recorded(vs []float64, maxSize int) *Histogram {
	r := NewRecorder(maxSize)
	for _, v := range vs {
		r.Record(v)
	}
	h := &Histogram{}
	r.Into(h)
	return h
}

func copyOf(h *Histogram) *Histogram {
	c := &Histogram{}
	c.CopyFrom(h)
	return c
}

func TestDeltaDetectsResets(t *testing.T) {
	a, b := NewExplicit([]float64{1, 2}), NewExplicit([]float64{1, 2})
	a.RecordExplicit(0.5)
	a.RecordExplicit(1.5)
	b.RecordExplicit(1.5)
	assert.False(t, (&Histogram{}).Delta(Explicit, b, a), "fewer observations")
	b.RecordExplicit(1.5)
	assert.False(t, (&Histogram{}).Delta(Explicit, b, a), "a bucket went down")
	c := NewExplicit([]float64{1, 3})
	for _, v := range []float64{0.5, 1.5, 2} {
		c.RecordExplicit(v)
	}
	assert.False(t, (&Histogram{}).Delta(Explicit, c, a), "other bounds")

	e, f := recorded([]float64{-0.3}, 160), recorded([]float64{0.3, 0.4}, 160)
	assert.False(t, (&Histogram{}).Delta(Exponential, f, e), "the negative bucket is gone")
	f.Scale++
	assert.False(t, (&Histogram{}).Delta(Exponential, f, e), "a higher scale")
}

// SumDelta in both directions: a monotonic counter with restarts gives
// non-negative increases adding up to what was counted; a non-monotonic sum
// (negative steps) adds up to its change.
func TestSumDeltaAddsUpToTheInputs(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	for range 500 {
		var cum, prev, counted, out float64
		for step := range 50 {
			restarted := r.IntN(10) == 0
			if restarted {
				cum = 0
			}
			inc := float64(r.IntN(100))
			cum += inc
			counted += inc
			d := cum
			if step > 0 {
				d = SumDelta(prev, cum, true, false) // resets found by the drop alone
				if restarted && inc >= prev {
					d = SumDelta(prev, cum, true, true) // ... or by the start time
				}
			}
			require.GreaterOrEqual(t, d, 0.0)
			out += d
			prev = cum
		}
		require.Equal(t, counted, out)

		var v, first, change float64
		for step := range 50 {
			nv := v + r.NormFloat64()*10
			if step == 0 {
				first = nv
			} else {
				change += SumDelta(v, nv, false, false)
			}
			v = nv
		}
		require.InDelta(t, v-first, change, 1e-9)
	}
}
