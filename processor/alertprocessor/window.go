package alertprocessor // import "github.com/anvil/anvilcol/processor/alertprocessor"

import (
	"bytes"
	"encoding/json"
	"time"
)

// accumulator is what one slot of a window knows of the data it received:
// enough to compute its rule's statistic over any run of slots by merging
// them. Each statistic is one implementation (stat_*.go), chosen when its
// rule is compiled (newAccumulator), that also saves and loads itself.
type accumulator interface {
	// addMetric adds one metric data point (after cumulative differencing).
	addMetric(o obs, at time.Time)
	// addEvent adds one event: its field's value, or 1 for a rule without field.
	addEvent(v float64, at time.Time)
	// merge adds later, an accumulator of the same type from a later slot.
	merge(later accumulator)
	// value is the statistic over what was added and merged; ok is false
	// when there is nothing to compute it from (the condition is then false).
	value(window time.Duration) (v float64, ok bool)
	// saved is the slot's persisted fields (a JSON object, README "State
	// format"); load reads them back.
	saved() any
	load(b []byte) error
}

// newAccumulator returns the constructor of the accumulator of a rule's
// statistic; cond is the per-event check of StatEach.
func newAccumulator(st Stat, cond func(float64) bool) func() accumulator {
	switch st {
	case StatEach:
		return func() accumulator { return &eachAcc{cond: cond} }
	case StatLast:
		return func() accumulator { return &lastAcc{} }
	case StatCount, StatSum, StatAvg, StatIncrease, StatRate:
		return func() accumulator { return &totalsAcc{stat: st} }
	}
	q, _ := st.quantile()
	return func() accumulator { return &quantileAcc{stat: st, q: q} }
}

// slot is one evaluation_interval-wide piece of a window.
type slot struct {
	start time.Time
	acc   accumulator
	n     float64 // observations, for min_count (obs.observations; 1 per event)
}

// addMetric adds a data point and its n observations.
func (s *slot) addMetric(o *obs, n float64, at time.Time) {
	s.acc.addMetric(*o, at)
	s.n += n
}

// addEvent adds one event (its field's value, or 1).
func (s *slot) addEvent(v float64, at time.Time) {
	s.acc.addEvent(v, at)
	s.n++
}

// window is the sliding window of one (rule, group): slots in time order.
type window struct {
	slots []slot
}

// at returns the slot holding time t (slots start at multiples of width),
// its accumulator made by newAcc if the slot is new. The pointer is valid
// until the window changes.
func (w *window) at(t time.Time, width time.Duration, newAcc func() accumulator) *slot {
	start := t.Truncate(width)
	if n := len(w.slots); n > 0 {
		last := &w.slots[n-1]
		if !start.After(last.start) {
			// Late or same-slot data goes into the newest slot.
			return last
		}
	}
	w.slots = append(w.slots, slot{start: start, acc: newAcc()})
	return &w.slots[len(w.slots)-1]
}

// expire drops slots that lie wholly before now-window.
func (w *window) expire(now time.Time, win, width time.Duration) {
	if i := w.ending(now.Add(-win), width); i > 0 {
		n := copy(w.slots, w.slots[i:])
		clear(w.slots[n:])
		w.slots = w.slots[:n]
	}
}

// total merges the oldest n slots into a new accumulator and sums their
// observations.
func (w *window) total(n int, newAcc func() accumulator) (accumulator, float64) {
	a, obs := newAcc(), 0.0
	for i := range w.slots[:n] {
		a.merge(w.slots[i].acc)
		obs += w.slots[i].n
	}
	return a, obs
}

// ending is how many slots, from the oldest, end at or before t.
func (w *window) ending(t time.Time, width time.Duration) int {
	i := 0
	for i < len(w.slots) && !w.slots[i].start.Add(width).After(t) {
		i++
	}
	return i
}

// savedSlot is a slot as persisted: its start and observations, then its
// accumulator's own fields, in one flat JSON object.
type savedSlot struct {
	Start time.Time
	Obs   float64
	Acc   json.RawMessage // the whole object; the accumulator ignores "start" and "obs"
}

// savedSlotHead is the fields of a saved slot that are the slot's own.
type savedSlotHead struct {
	Start time.Time `json:"start"`
	Obs   pfloat    `json:"obs,omitempty"`
}

func saveSlot(s *slot) savedSlot {
	b, err := json.Marshal(s.acc.saved())
	if err != nil {
		panic(err) // every field is encodable (pfloat covers NaN and infinities)
	}
	return savedSlot{Start: s.start, Obs: s.n, Acc: b}
}

func loadSlot(ss savedSlot, newAcc func() accumulator) (slot, error) {
	s := slot{start: ss.Start, acc: newAcc(), n: ss.Obs}
	if len(ss.Acc) > 0 {
		if err := s.acc.load(ss.Acc); err != nil {
			return slot{}, err
		}
	}
	return s, nil
}

func (s savedSlot) MarshalJSON() ([]byte, error) {
	b, err := json.Marshal(savedSlotHead{s.Start, pfloat(s.Obs)})
	if err != nil {
		return nil, err
	}
	acc := bytes.TrimSpace(s.Acc)
	if len(acc) <= 2 { // no fields
		return b, nil
	}
	b = append(b[:len(b)-1], ',')
	return append(b, acc[1:]...), nil
}

func (s *savedSlot) UnmarshalJSON(b []byte) error {
	var h savedSlotHead
	if err := json.Unmarshal(b, &h); err != nil {
		return err
	}
	s.Start, s.Obs, s.Acc = h.Start, float64(h.Obs), append(json.RawMessage(nil), b...)
	return nil
}
