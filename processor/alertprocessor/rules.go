package alertprocessor // import "github.com/anvil/anvilcol/processor/alertprocessor"

import (
	"fmt"
	"text/template"
	"time"

	"github.com/anvil/anvilcol/internal/eventmatch"
)

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
	stat      Stat
	q         float64
	op        Op
	threshold float64
	sev       Severity
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
	case r.cfg.Stat != StatEach:
		return r.cfg.Stat.String()
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
	st := rc.Stat
	if st == StatEach && r.isMetric {
		st = StatLast
	}
	r.stat = st
	r.q, _ = st.quantile()
	r.op = rc.Op
	if r.sev = rc.Severity; r.sev == SeverityUnset {
		r.sev = SeverityWarning
	}
	if r.tmpl, err = parseSummary(rc.Name, rc.Summary); err != nil {
		return nil, fmt.Errorf("rule %q: summary: %w", rc.Name, err)
	}
	r.window = rc.Window
	if r.window == 0 {
		if st == StatEach {
			r.window = eval
		} else {
			r.window = max(defaultStatWindow, eval)
		}
	}
	r.slotWidth = max(eval, r.window/maxSlotsPerWindow)
	r.fp = r.fingerprint()
	return r, nil
}
