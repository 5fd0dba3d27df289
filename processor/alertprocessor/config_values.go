package alertprocessor // import "github.com/anvil/anvilcol/processor/alertprocessor"

import (
	"fmt"
	"math"
	"strings"

	"github.com/anvil/anvilcol/processor/alertprocessor/internal/notify"
)

// The typed values of a rule's `stat`, `op`, `compare` and `severity`: the config
// decoder calls UnmarshalText, so a name is parsed once, when the config is
// read, and an unknown one fails naming its key (the decoder prefixes the
// key, e.g. `'rules[2].stat' unknown stat "p42"; use one of ...`).

// Stat is the statistic a rule computes over its window (`stat`).
type Stat int

// The stats. Their numbers are part of the saved state's rule fingerprint
// (state.go): append, never renumber.
const (
	// StatEach is an empty `stat`: metric rules compute StatLast; event
	// rules check every event's field on its own.
	StatEach Stat = iota
	StatLast
	StatP50
	StatP90
	StatP95
	StatP99
	StatP999
	StatAvg
	StatMin
	StatMax
	StatSum
	StatCount
	StatIncrease
	StatRate
)

var statNames = []string{
	StatEach: "", StatLast: "last", StatP50: "p50", StatP90: "p90", StatP95: "p95", StatP99: "p99", StatP999: "p999",
	StatAvg: "avg", StatMin: "min", StatMax: "max", StatSum: "sum", StatCount: "count",
	StatIncrease: "increase", StatRate: "rate",
}

func (s Stat) String() string {
	if s >= 0 && int(s) < len(statNames) {
		return statNames[s]
	}
	return fmt.Sprintf("Stat(%d)", int(s))
}

func (s Stat) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText accepts a stat name; "" is StatEach (the rule kind's default).
func (s *Stat) UnmarshalText(b []byte) error {
	v, ok := lookup(statNames, string(b))
	if !ok {
		return fmt.Errorf("unknown stat %q; use one of %s", b, strings.Join(statNames[1:], " "))
	}
	*s = Stat(v)
	return nil
}

// quantile returns the quantile of a percentile stat.
func (s Stat) quantile() (float64, bool) {
	switch s {
	case StatP50:
		return 0.5, true
	case StatP90:
		return 0.9, true
	case StatP95:
		return 0.95, true
	case StatP99:
		return 0.99, true
	case StatP999:
		return 0.999, true
	}
	return 0, false
}

// needsValue reports whether the stat needs a number per event (a `field`).
func (s Stat) needsValue() bool {
	switch s {
	case StatCount, StatIncrease, StatRate:
		return false
	}
	return true
}

// scalesWithWindow reports whether the stat grows with the window's length
// (count, sum, increase), so a baseline of another length is normalised to
// the rule's window.
func (s Stat) scalesWithWindow() bool {
	switch s {
	case StatCount, StatSum, StatIncrease:
		return true
	}
	return false
}

// Op compares a value with the threshold (`op`).
type Op int

// The ops; OpUnset is a rule without `op` (invalid).
const (
	OpUnset Op = iota
	OpGT
	OpGE
	OpLT
	OpLE
	OpEQ
	OpNE
)

var opNames = []string{OpUnset: "", OpGT: ">", OpGE: ">=", OpLT: "<", OpLE: "<=", OpEQ: "==", OpNE: "!="}

func (o Op) String() string {
	if o >= 0 && int(o) < len(opNames) {
		return opNames[o]
	}
	return fmt.Sprintf("Op(%d)", int(o))
}

func (o Op) MarshalText() ([]byte, error) { return []byte(o.String()), nil }

// UnmarshalText accepts > >= < <= == !=.
func (o *Op) UnmarshalText(b []byte) error {
	v, ok := lookup(opNames, string(b))
	if !ok || v == int(OpUnset) {
		return fmt.Errorf("unknown op %q; use one of %s", b, strings.Join(opNames[1:], " "))
	}
	*o = Op(v)
	return nil
}

func (o Op) eval(v, threshold float64) bool {
	if math.IsNaN(v) {
		return false
	}
	switch o {
	case OpGT:
		return v > threshold
	case OpGE:
		return v >= threshold
	case OpLT:
		return v < threshold
	case OpLE:
		return v <= threshold
	case OpEQ:
		return v == threshold
	case OpNE:
		return v != threshold
	}
	return false
}

// Compare is how a baseline rule sets its window's statistic against the
// baseline's (`compare`).
type Compare int

// The comparisons; CompareUnset is a rule without `compare` (ratio when it
// has a baseline). Their numbers are part of the saved state's rule
// fingerprint (state.go): append, never renumber.
const (
	CompareUnset Compare = iota
	CompareRatio
	CompareDifference
)

var compareNames = []string{CompareUnset: "", CompareRatio: "ratio", CompareDifference: "difference"}

func (c Compare) String() string {
	if c >= 0 && int(c) < len(compareNames) {
		return compareNames[c]
	}
	return fmt.Sprintf("Compare(%d)", int(c))
}

func (c Compare) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

// UnmarshalText accepts ratio and difference; "" is CompareUnset.
func (c *Compare) UnmarshalText(b []byte) error {
	v, ok := lookup(compareNames, string(b))
	if !ok {
		return fmt.Errorf("unknown compare %q; use ratio or difference", b)
	}
	*c = Compare(v)
	return nil
}

// apply is the value a baseline rule compares with its threshold: current /
// baseline, or current − baseline. A ratio to a baseline of 0 has none.
func (c Compare) apply(current, baseline float64) (float64, bool) {
	if c == CompareDifference {
		return current - baseline, true
	}
	if baseline == 0 {
		return math.NaN(), false
	}
	return current / baseline, true
}

// Severity orders alerts (`severity`); a notifier's min_severity filters
// on it. It is the notify package's type, so a rule's severity is what the
// notifiers compare.
type Severity = notify.Severity

// The severities, lowest first; SeverityUnset is a rule without `severity`
// (warning).
const (
	SeverityUnset    Severity = 0
	SeverityInfo              = notify.SeverityInfo
	SeverityWarning           = notify.SeverityWarning
	SeverityError             = notify.SeverityError
	SeverityCritical          = notify.SeverityCritical
)

func lookup(names []string, s string) (int, bool) {
	for i, n := range names {
		if n == s {
			return i, true
		}
	}
	return 0, false
}
