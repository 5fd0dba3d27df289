package alertprocessor // import "github.com/anvil/anvilcol/processor/alertprocessor"

import (
	"encoding/json"
	"time"
)

// lastAcc computes last: the latest gauge or sum value (cumulative sums:
// the reported total), the mean of the latest histogram or summary point's
// delta, the latest event field value.
type lastAcc struct {
	last    float64
	lastAt  time.Time
	hasLast bool
}

func (a *lastAcc) set(v float64, at time.Time) {
	if !a.hasLast || !at.Before(a.lastAt) {
		a.last, a.lastAt, a.hasLast = v, at, true
	}
}

func (a *lastAcc) addMetric(o obs, at time.Time) {
	if o.hasValue {
		a.set(o.value, at)
	}
}

func (a *lastAcc) addEvent(v float64, at time.Time) { a.set(v, at) }

func (a *lastAcc) merge(later accumulator) {
	if b := later.(*lastAcc); b.hasLast {
		a.set(b.last, b.lastAt)
	}
}

func (a *lastAcc) value(time.Duration) (float64, bool) { return a.last, a.hasLast }

type savedLast struct {
	Last    pfloat    `json:"last,omitempty"`
	LastAt  time.Time `json:"last_at,omitzero"`
	HasLast bool      `json:"has_last,omitempty"`
}

func (a *lastAcc) saved() any { return savedLast{pfloat(a.last), a.lastAt, a.hasLast} }

func (a *lastAcc) load(b []byte) error {
	var s savedLast
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	a.last, a.lastAt, a.hasLast = float64(s.Last), s.LastAt, s.HasLast
	return nil
}
