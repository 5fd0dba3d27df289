package alertprocessor // import "github.com/anvil/anvilcol/processor/alertprocessor"

import (
	"github.com/DataDog/sketches-go/ddsketch"
	"github.com/DataDog/sketches-go/ddsketch/mapping"
	"github.com/DataDog/sketches-go/ddsketch/store"
	"math"
	"slices"
	"time"
)

// agg is what one slot of a window knows: enough to compute every stat over
// any run of slots by merging them.
type agg struct {
	n         float64 // samples, events, data points, or histogram/summary observations
	sum       float64 // sum of samples / deltas / field values
	min, max  float64
	hasMinMax bool
	inc       float64 // increase: counter deltas, histogram count deltas, events
	last      float64
	lastAt    time.Time
	hasLast   bool

	hist    map[float64]float64 // histogram bucket upper bound -> observations (deltas)
	fastUB  []float64           // the common case: every point of the slot has one bucket layout,
	fastN   []float64           // summed here without map work (spilled into hist otherwise)
	samples *sketch             // distribution of samples (gauges, sum deltas, event fields)
	quant   map[float64]float64 // summary quantile -> latest reported value
	quantAt time.Time

	viol     float64 // per-event checks: events that met the condition
	violLast float64 // the value of the latest of them
}

func (a *agg) addMinMax(lo, hi float64) {
	if !a.hasMinMax {
		a.min, a.max, a.hasMinMax = lo, hi, true
		return
	}
	a.min = math.Min(a.min, lo)
	a.max = math.Max(a.max, hi)
}

func (a *agg) setLast(v float64, at time.Time) {
	if !a.hasLast || !at.Before(a.lastAt) {
		a.last, a.lastAt, a.hasLast = v, at, true
	}
}

// addSample records one sample value (gauge point, counter delta, event field).
func (a *agg) addSample(v float64, withSketch bool) {
	a.n++
	a.sum += v
	a.addMinMax(v, v)
	if withSketch {
		if a.samples == nil {
			a.samples = newSketch()
		}
		a.samples.add(v, 1)
	}
}

// addBuckets adds one data point's bucket deltas.
func (a *agg) addBuckets(bs []bucket) {
	if len(bs) == 0 {
		return
	}
	if a.hist == nil {
		if a.fastUB == nil {
			a.fastUB = make([]float64, len(bs))
			a.fastN = make([]float64, len(bs))
			for i, b := range bs {
				a.fastUB[i], a.fastN[i] = b.upper, b.count
			}
			return
		}
		if sameLayout(a.fastUB, bs) {
			for i, b := range bs {
				a.fastN[i] += b.count
			}
			return
		}
	}
	for _, b := range bs {
		a.addBucket(b.upper, b.count)
	}
}

func sameLayout(ub []float64, bs []bucket) bool {
	if len(ub) != len(bs) {
		return false
	}
	for i, b := range bs {
		if ub[i] != b.upper {
			return false
		}
	}
	return true
}

// buckets returns every bucket of the agg as upper bound -> count.
func (a *agg) buckets() map[float64]float64 {
	if a.fastUB == nil {
		return a.hist
	}
	m := make(map[float64]float64, len(a.fastUB)+len(a.hist))
	for ub, c := range a.hist {
		m[ub] += c
	}
	for i, ub := range a.fastUB {
		m[ub] += a.fastN[i]
	}
	return m
}

func (a *agg) addBucket(upper, count float64) {
	if a.hist == nil {
		a.hist = make(map[float64]float64, 16)
	}
	a.hist[upper] += count
}

// merge adds b into a (b is a later slot than a).
func (a *agg) merge(b *agg) {
	a.n += b.n
	a.sum += b.sum
	if b.hasMinMax {
		a.addMinMax(b.min, b.max)
	}
	a.inc += b.inc
	if b.hasLast {
		a.setLast(b.last, b.lastAt)
	}
	for ub, c := range b.hist {
		a.addBucket(ub, c)
	}
	for i, ub := range b.fastUB {
		a.addBucket(ub, b.fastN[i])
	}
	if b.samples != nil {
		if a.samples == nil {
			a.samples = newSketch()
		}
		a.samples.merge(b.samples)
	}
	if b.quant != nil && !b.quantAt.Before(a.quantAt) {
		a.quant, a.quantAt = b.quant, b.quantAt
	}
	a.viol += b.viol
	if b.viol > 0 {
		a.violLast = b.violLast
	}
}

// value computes a stat; ok is false when the window holds nothing to compute
// it from (the condition is then false).
func (a *agg) value(st Stat, q float64, window time.Duration) (float64, bool) {
	switch st {
	case StatCount:
		return a.n, true
	case StatIncrease:
		return a.inc, true
	case StatRate:
		return a.inc / window.Seconds(), true
	case StatSum:
		return a.sum, true
	case StatEach:
		return a.violLast, a.viol > 0
	case StatLast:
		return a.last, a.hasLast
	case StatAvg:
		if a.n == 0 {
			return 0, false
		}
		return a.sum / a.n, true
	case StatMin, StatMax:
		if a.hasMinMax {
			if st == StatMin {
				return a.min, true
			}
			return a.max, true
		}
		// No exact extremes (cumulative histograms): estimate from the buckets.
		q := 0.0
		if st == StatMax {
			q = 1
		}
		return a.quantileOf(q)
	}
	return a.quantileOf(q)
}

func (a *agg) quantileOf(q float64) (float64, bool) {
	if len(a.hist) > 0 || a.fastUB != nil {
		v := histogramQuantile(q, a.buckets())
		return v, !math.IsNaN(v)
	}
	if a.samples != nil && a.samples.total() > 0 {
		return a.samples.quantile(q), true
	}
	if a.quant != nil {
		return summaryQuantile(q, a.quant)
	}
	return 0, false
}

// histogramQuantile is Prometheus' histogram_quantile over buckets given as
// upper bound -> count (not cumulative): linear interpolation within the
// bucket holding the rank, the lower bound of the first bucket taken as 0 when
// its upper bound is positive, and the highest finite bound returned for a
// rank in the +Inf bucket.
func histogramQuantile(q float64, buckets map[float64]float64) float64 {
	if q < 0 {
		return math.Inf(-1)
	}
	if q > 1 {
		return math.Inf(1)
	}
	bounds := make([]float64, 0, len(buckets)+1)
	for ub := range buckets {
		bounds = append(bounds, ub)
	}
	if _, ok := buckets[math.Inf(1)]; !ok {
		bounds = append(bounds, math.Inf(1))
	}
	slices.Sort(bounds)
	if len(bounds) < 2 {
		return math.NaN()
	}
	cum := make([]float64, len(bounds))
	var total float64
	for i, ub := range bounds {
		total += buckets[ub]
		cum[i] = total
	}
	if total == 0 {
		return math.NaN()
	}
	rank := q * total
	b := 0
	for b < len(cum)-1 && cum[b] < rank {
		b++
	}
	// Skip empty buckets below the rank so q=0 lands on the first non-empty one.
	for b < len(cum)-1 && cum[b] == 0 {
		b++
	}
	if b == len(bounds)-1 {
		return bounds[len(bounds)-2]
	}
	if b == 0 && bounds[0] <= 0 {
		return bounds[0]
	}
	start, end, count := 0.0, bounds[b], cum[b]
	if b > 0 {
		start = bounds[b-1]
		count -= cum[b-1]
		rank -= cum[b-1]
	}
	if count == 0 {
		return end
	}
	return start + (end-start)*(rank/count)
}

// summaryQuantile returns the summary's reported quantile nearest to q.
func summaryQuantile(q float64, quant map[float64]float64) (float64, bool) {
	best, bestD, ok := 0.0, math.Inf(1), false
	for k, v := range quant {
		if d := math.Abs(k - q); d < bestD {
			best, bestD, ok = v, d, true
		}
	}
	return best, ok
}

// sketchGamma sets the relative accuracy of sample percentiles (about 1%).
const sketchGamma = 1.02

// sketchMapping is DDSketch's logarithmic mapping at sketchGamma: bin j
// holds [gamma^j, gamma^(j+1)).
var sketchMapping, _ = mapping.NewLogarithmicMappingWithGamma(sketchGamma, 0)

// sketch is the distribution of samples: a DDSketch (sketches-go) on sparse
// stores, so a window of few distinct magnitudes stays small.
type sketch struct{ dd *ddsketch.DDSketch }

func newSketch() *sketch {
	return &sketch{dd: ddsketch.NewDDSketch(sketchMapping, store.NewSparseStore(), store.NewSparseStore())}
}

// add counts v n times; values a sketch cannot index (NaN, beyond ±1e308)
// are left out, as NaN samples are everywhere else.
func (s *sketch) add(v, n float64) { _ = s.dd.AddWithCount(v, n) }

func (s *sketch) merge(o *sketch) { _ = s.dd.MergeWith(o.dd) }

func (s *sketch) total() float64 { return s.dd.GetCount() }

// quantile is DDSketch's value at rank q*(count-1), within 1% of a sample.
func (s *sketch) quantile(q float64) float64 {
	v, err := s.dd.GetValueAtQuantile(math.Max(0, math.Min(1, q)))
	if err != nil {
		return 0
	}
	return v
}

// slot is one evaluation_interval-wide piece of a window.
type slot struct {
	start time.Time
	agg   agg
}

// window is the sliding window of one (rule, group): slots in time order.
type window struct {
	slots []slot
}

// at returns the slot holding time t (slots start at multiples of width).
func (w *window) at(t time.Time, width time.Duration) *agg {
	start := t.Truncate(width)
	if n := len(w.slots); n > 0 {
		last := &w.slots[n-1]
		if !start.After(last.start) {
			// Late or same-slot data goes into the newest slot.
			return &last.agg
		}
	}
	w.slots = append(w.slots, slot{start: start})
	return &w.slots[len(w.slots)-1].agg
}

// expire drops slots that lie wholly before now-window.
func (w *window) expire(now time.Time, win, width time.Duration) {
	cut := now.Add(-win)
	i := 0
	for i < len(w.slots) && !w.slots[i].start.Add(width).After(cut) {
		i++
	}
	if i > 0 {
		n := copy(w.slots, w.slots[i:])
		clear(w.slots[n:])
		w.slots = w.slots[:n]
	}
}

// total merges the slots still in the window.
func (w *window) total() agg {
	var a agg
	for i := range w.slots {
		a.merge(&w.slots[i].agg)
	}
	return a
}
