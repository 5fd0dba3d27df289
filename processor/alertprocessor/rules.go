package alertprocessor // import "github.com/anvil/anvilcol/processor/alertprocessor"

import (
	"fmt"
	"math"
	"text/template"
	"time"

	"github.com/anvil/anvilcol/internal/eventmatch"
)

// stat is the statistic a rule computes over its window.
type stat int

const (
	statEach stat = iota // event rule without stat: every event is checked on its own
	statLast
	statP50
	statP90
	statP95
	statP99
	statP999
	statAvg
	statMin
	statMax
	statSum
	statCount
	statIncrease
	statRate
)

var statNames = map[string]stat{
	"last": statLast, "p50": statP50, "p90": statP90, "p95": statP95, "p99": statP99, "p999": statP999,
	"avg": statAvg, "min": statMin, "max": statMax, "sum": statSum, "count": statCount,
	"increase": statIncrease, "rate": statRate,
}

// parseStat maps a stat name; "" is valid (the rule kind picks the default).
func parseStat(s string) (stat, bool) {
	if s == "" {
		return statEach, true
	}
	st, ok := statNames[s]
	return st, ok
}

// quantile returns the quantile of a percentile stat.
func (s stat) quantile() (float64, bool) {
	switch s {
	case statP50:
		return 0.5, true
	case statP90:
		return 0.9, true
	case statP95:
		return 0.95, true
	case statP99:
		return 0.99, true
	case statP999:
		return 0.999, true
	}
	return 0, false
}

// needsValue reports whether the stat needs a number per event (a `field`).
func (s stat) needsValue() bool {
	switch s {
	case statCount, statIncrease, statRate:
		return false
	}
	return true
}

// op compares a value with the threshold.
type op int

const (
	opGT op = iota
	opGE
	opLT
	opLE
	opEQ
	opNE
)

var opNames = map[string]op{">": opGT, ">=": opGE, "<": opLT, "<=": opLE, "==": opEQ, "!=": opNE}

func parseOp(s string) (op, bool) {
	o, ok := opNames[s]
	return o, ok
}

func (o op) eval(v, threshold float64) bool {
	if math.IsNaN(v) {
		return false
	}
	switch o {
	case opGT:
		return v > threshold
	case opGE:
		return v >= threshold
	case opLT:
		return v < threshold
	case opLE:
		return v <= threshold
	case opEQ:
		return v == threshold
	case opNE:
		return v != threshold
	}
	return false
}

// severity orders alerts; a notifier's min_severity filters on it.
type severity int

const (
	sevInfo severity = iota + 1
	sevWarning
	sevError
	sevCritical
)

var severityNames = map[string]severity{"info": sevInfo, "warning": sevWarning, "error": sevError, "critical": sevCritical}

// parseSeverity maps a severity name; "" is valid (the caller picks the default).
func parseSeverity(s string) (severity, bool) {
	if s == "" {
		return 0, true
	}
	v, ok := severityNames[s]
	return v, ok
}

func (s severity) String() string {
	for k, v := range severityNames {
		if v == s {
			return k
		}
	}
	return "unknown"
}

// maxSlotsPerWindow bounds the memory of a window: slots are
// evaluation_interval wide unless the window would need more than this many.
const maxSlotsPerWindow = 360

// defaultStatWindow is the window of a rule with a stat and no window.
const defaultStatWindow = 5 * time.Minute

// rule is a compiled RuleConfig.
type rule struct {
	cfg       RuleConfig
	name      string
	isMetric  bool
	matcher   *eventmatch.Matcher
	stat      stat
	q         float64
	op        op
	threshold float64
	sev       severity
	tmpl      *template.Template
	window    time.Duration
	slotWidth time.Duration
	groupBy   []string
	fp        string // fingerprint of what the persisted state means (state.go)

	groups map[string]*group
}

// statName is the stat as notifications name it: the configured one, else
// `last` (metric rules) or `each` (per-event checks).
func (r *rule) statName() string {
	switch {
	case r.cfg.Stat != "":
		return r.cfg.Stat
	case r.isMetric:
		return "last"
	}
	return "each"
}

func compileRule(rc RuleConfig, eval time.Duration) (*rule, error) {
	r := &rule{cfg: rc, name: rc.Name, isMetric: rc.Metric != "", threshold: rc.Threshold, groupBy: rc.GroupBy,
		groups: map[string]*group{}}
	pattern := rc.Event
	if r.isMetric {
		pattern = rc.Metric
	}
	m, err := eventmatch.New([]string{pattern})
	if err != nil {
		return nil, fmt.Errorf("rule %q: %w", rc.Name, err)
	}
	r.matcher = m
	st, ok := parseStat(rc.Stat)
	if !ok {
		return nil, fmt.Errorf("rule %q: unknown stat %q", rc.Name, rc.Stat)
	}
	if st == statEach && r.isMetric {
		st = statLast
	}
	r.stat = st
	r.q, _ = st.quantile()
	if r.op, ok = parseOp(rc.Op); !ok {
		return nil, fmt.Errorf("rule %q: unknown op %q", rc.Name, rc.Op)
	}
	if r.sev, _ = parseSeverity(rc.Severity); r.sev == 0 {
		r.sev = sevWarning
	}
	if r.tmpl, err = parseSummary(rc.Name, rc.Summary); err != nil {
		return nil, fmt.Errorf("rule %q: summary: %w", rc.Name, err)
	}
	r.window = rc.Window
	if r.window == 0 {
		if st == statEach {
			r.window = eval
		} else {
			r.window = max(defaultStatWindow, eval)
		}
	}
	r.slotWidth = max(eval, r.window/maxSlotsPerWindow)
	r.fp = r.fingerprint()
	return r, nil
}
