package alertprocessor // import "github.com/anvil/anvilcol/processor/alertprocessor"

import (
	"encoding/json"
	"maps"
	"math"
	"slices"
	"time"

	"github.com/DataDog/sketches-go/ddsketch"
	"github.com/DataDog/sketches-go/ddsketch/mapping"
	"github.com/DataDog/sketches-go/ddsketch/store"
)

// quantileAcc computes the percentiles (p50 ... p999), min and max, from
// whichever the data has, in this order: histogram bucket deltas
// (Prometheus' histogram_quantile), a sketch of the samples (gauge values,
// sum deltas, event fields: DDSketch, 1% accurate), the latest summary's
// reported quantiles. min and max are exact where the data says them (samples,
// delta histograms' min/max, a summary's quantiles 0 and 1), else estimated
// as quantile 0 and 1.
type quantileAcc struct {
	stat      Stat
	q         float64 // of a percentile; 0 for min and max (no sketch is kept)
	min, max  float64
	hasMinMax bool

	hist    map[float64]float64 // histogram bucket upper bound -> observations (deltas)
	fastUB  []float64           // the common case: every point of the slot has one bucket layout,
	fastN   []float64           // summed here without map work (spilled into hist otherwise)
	samples *sketch
	quant   map[float64]float64 // summary quantile -> latest reported value
	quantAt time.Time
}

func (a *quantileAcc) addMinMax(lo, hi float64) {
	if !a.hasMinMax {
		a.min, a.max, a.hasMinMax = lo, hi, true
		return
	}
	a.min = math.Min(a.min, lo)
	a.max = math.Max(a.max, hi)
}

// addSample records one sample (gauge value, counter delta, event field).
func (a *quantileAcc) addSample(v float64) {
	a.addMinMax(v, v)
	if a.q > 0 {
		if a.samples == nil {
			a.samples = newSketch()
		}
		a.samples.add(v, 1)
	}
}

func (a *quantileAcc) addMetric(o obs, at time.Time) {
	switch o.kind {
	case kindGauge:
		a.addSample(o.value)
	case kindSum:
		if o.hasDelta {
			a.addSample(o.delta)
		}
	case kindHistogram, kindSummary:
		if o.hasMinMax && o.count > 0 {
			a.addMinMax(o.min, o.max)
		}
		a.addBuckets(o.buckets)
		if o.quant != nil {
			a.quant, a.quantAt = o.quant, at
		}
	}
}

func (a *quantileAcc) addEvent(v float64, _ time.Time) { a.addSample(v) }

// addBuckets adds one data point's bucket deltas.
func (a *quantileAcc) addBuckets(bs []bucket) {
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

func (a *quantileAcc) addBucket(upper, count float64) {
	if a.hist == nil {
		a.hist = make(map[float64]float64, 16)
	}
	a.hist[upper] += count
}

// buckets returns every bucket as upper bound -> count.
func (a *quantileAcc) buckets() map[float64]float64 {
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

func (a *quantileAcc) merge(later accumulator) {
	b := later.(*quantileAcc)
	if b.hasMinMax {
		a.addMinMax(b.min, b.max)
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
}

func (a *quantileAcc) value(time.Duration) (float64, bool) {
	switch a.stat {
	case StatMin, StatMax:
		if a.hasMinMax {
			if a.stat == StatMin {
				return a.min, true
			}
			return a.max, true
		}
		// No exact extremes (cumulative histograms): estimate from the buckets.
		q := 0.0
		if a.stat == StatMax {
			q = 1
		}
		return a.quantileOf(q)
	}
	return a.quantileOf(a.q)
}

func (a *quantileAcc) quantileOf(q float64) (float64, bool) {
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

// savedQuantile is the persisted form. Histogram buckets are `hist` /
// `fast_ub` + `fast_n` ([upper bound, count] deltas), summaries `quant`
// ([quantile, value]), the sketch `samples`.
type savedQuantile struct {
	Min       pfloat       `json:"min,omitempty"`
	Max       pfloat       `json:"max,omitempty"`
	HasMinMax bool         `json:"has_min_max,omitempty"`
	Hist      [][2]pfloat  `json:"hist,omitempty"`    // ascending
	FastUB    []pfloat     `json:"fast_ub,omitempty"` // the one-layout bucket run
	FastN     []pfloat     `json:"fast_n,omitempty"`
	Samples   *savedSketch `json:"samples,omitempty"`
	Quant     [][2]pfloat  `json:"quant,omitempty"` // ascending
	QuantAt   time.Time    `json:"quant_at,omitzero"`
}

// savedSketch holds sketch bucket index i -> count: pos/neg bucket i holds
// magnitudes in (1.02^(i-1), 1.02^i], DDSketch's bin i-1.
type savedSketch struct {
	Pos   map[int]pfloat `json:"pos,omitempty"`
	Neg   map[int]pfloat `json:"neg,omitempty"`
	Zero  pfloat         `json:"zero,omitempty"`
	Total pfloat         `json:"total"`
}

func (a *quantileAcc) saved() any {
	s := savedQuantile{Min: pfloat(a.min), Max: pfloat(a.max), HasMinMax: a.hasMinMax,
		Hist: pairs(a.hist), FastUB: floats(a.fastUB), FastN: floats(a.fastN), Quant: pairs(a.quant), QuantAt: a.quantAt}
	if a.samples != nil {
		dd := a.samples.dd
		s.Samples = &savedSketch{Pos: saveBins(dd.GetPositiveValueStore()), Neg: saveBins(dd.GetNegativeValueStore()),
			Zero: pfloat(dd.GetZeroCount()), Total: pfloat(dd.GetCount())}
	}
	return s
}

func (a *quantileAcc) load(b []byte) error {
	var s savedQuantile
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	a.min, a.max, a.hasMinMax = float64(s.Min), float64(s.Max), s.HasMinMax
	a.hist, a.fastUB, a.fastN = unpairs(s.Hist), unfloats(s.FastUB), unfloats(s.FastN)
	a.quant, a.quantAt = unpairs(s.Quant), s.QuantAt
	if len(a.fastUB) != len(a.fastN) {
		a.fastUB, a.fastN = nil, nil
	}
	if s.Samples != nil {
		a.samples = newSketch()
		dd := a.samples.dd
		loadBins(dd.GetPositiveValueStore(), s.Samples.Pos)
		loadBins(dd.GetNegativeValueStore(), s.Samples.Neg)
		if z := float64(s.Samples.Zero); z > 0 {
			_ = dd.AddWithCount(0, z)
		}
	}
	return nil
}

func pairs(m map[float64]float64) [][2]pfloat {
	if len(m) == 0 {
		return nil
	}
	out := make([][2]pfloat, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, [2]pfloat{pfloat(k), pfloat(m[k])})
	}
	return out
}

func unpairs(p [][2]pfloat) map[float64]float64 {
	if len(p) == 0 {
		return nil
	}
	m := make(map[float64]float64, len(p))
	for _, kv := range p {
		m[float64(kv[0])] = float64(kv[1])
	}
	return m
}

func floats(v []float64) []pfloat {
	if v == nil {
		return nil
	}
	out := make([]pfloat, len(v))
	for i, x := range v {
		out[i] = pfloat(x)
	}
	return out
}

func unfloats(v []pfloat) []float64 {
	if v == nil {
		return nil
	}
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}

// saveBins and loadBins keep the saved format of the sample sketch: key i
// holds (gamma^(i-1), gamma^i], which is DDSketch's bin i-1.
func saveBins(st store.Store) map[int]pfloat {
	if st.IsEmpty() {
		return nil
	}
	out := map[int]pfloat{}
	st.ForEach(func(j int, n float64) bool {
		out[j+1] = pfloat(n)
		return false
	})
	return out
}

func loadBins(st store.Store, m map[int]pfloat) {
	for i, n := range m {
		if n > 0 {
			st.AddWithCount(i-1, float64(n))
		}
	}
}
