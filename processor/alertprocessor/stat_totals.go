package alertprocessor // import "github.com/anvil/anvilcol/processor/alertprocessor"

import (
	"encoding/json"
	"time"
)

// totalsAcc computes count, sum, avg, increase and rate.
//
//	                 n (count)        sum                 inc (increase, rate)
//	gauge point      1                its value           change since the series' last point
//	sum point        1 (with delta)   its delta           its delta
//	histogram        observations     sum of observations observations
//	event            1                field value         field value (1 without field)
type totalsAcc struct {
	stat Stat
	n    float64
	sum  float64
	inc  float64
}

func (a *totalsAcc) addMetric(o obs, _ time.Time) {
	a.n += o.observations()
	switch o.kind {
	case kindGauge:
		a.sum += o.value
		if o.hasDelta {
			a.inc += o.delta
		}
	case kindSum:
		if o.hasDelta {
			a.sum += o.delta
			a.inc += o.delta
		}
	case kindHistogram, kindSummary:
		a.sum += o.sum
		a.inc += o.count
	}
}

func (a *totalsAcc) addEvent(v float64, _ time.Time) {
	a.n++
	a.sum += v
	a.inc += v
}

func (a *totalsAcc) merge(later accumulator) {
	b := later.(*totalsAcc)
	a.n += b.n
	a.sum += b.sum
	a.inc += b.inc
}

func (a *totalsAcc) value(window time.Duration) (float64, bool) {
	switch a.stat {
	case StatCount:
		return a.n, true
	case StatSum:
		return a.sum, true
	case StatIncrease:
		return a.inc, true
	case StatRate:
		return a.inc / window.Seconds(), true
	}
	// StatAvg
	if a.n == 0 {
		return 0, false
	}
	return a.sum / a.n, true
}

type savedTotals struct {
	N   pfloat `json:"n,omitempty"`
	Sum pfloat `json:"sum,omitempty"`
	Inc pfloat `json:"inc,omitempty"`
}

func (a *totalsAcc) saved() any { return savedTotals{pfloat(a.n), pfloat(a.sum), pfloat(a.inc)} }

func (a *totalsAcc) load(b []byte) error {
	var s savedTotals
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	a.n, a.sum, a.inc = float64(s.N), float64(s.Sum), float64(s.Inc)
	return nil
}
