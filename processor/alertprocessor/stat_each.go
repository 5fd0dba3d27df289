package alertprocessor // import "github.com/anvil/anvilcol/processor/alertprocessor"

import (
	"encoding/json"
	"time"
)

// eachAcc is the per-event check of an event rule without stat: every
// event's field is compared on its arrival; the value is that of the latest
// event that met the condition, and there is none if no event did.
type eachAcc struct {
	cond     func(float64) bool
	viol     float64 // events that met the condition
	violLast float64 // the value of the latest of them
}

func (a *eachAcc) addMetric(obs, time.Time) {} // metric rules have a stat

func (a *eachAcc) addEvent(v float64, _ time.Time) {
	if a.cond(v) {
		a.viol++
		a.violLast = v
	}
}

func (a *eachAcc) merge(later accumulator) {
	b := later.(*eachAcc)
	a.viol += b.viol
	if b.viol > 0 {
		a.violLast = b.violLast
	}
}

func (a *eachAcc) value(time.Duration) (float64, bool) { return a.violLast, a.viol > 0 }

type savedEach struct {
	Viol     pfloat `json:"viol,omitempty"`
	ViolLast pfloat `json:"viol_last,omitempty"`
}

func (a *eachAcc) saved() any { return savedEach{pfloat(a.viol), pfloat(a.violLast)} }

func (a *eachAcc) load(b []byte) error {
	var s savedEach
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	a.viol, a.violLast = float64(s.Viol), float64(s.ViolLast)
	return nil
}
