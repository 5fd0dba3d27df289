package alertprocessor // import "github.com/anvil/anvilcol/processor/alertprocessor"

import (
	"fmt"
	"math"
	"strings"
	"text/template"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/anvil/anvilcol/internal/eventmatch"
)

// alertingRule is one configured rule as the engine schedules, saves and
// reports it: a metricRule (rule_metric.go) or an eventRule
// (rule_event.go). Ingestion feeds each kind its own observations; the
// alerts and their state machine are the rule's own (rule, below).
type alertingRule interface {
	// eval steps every alert of the rule at now and appends the
	// notifications to send to out.
	eval(now time.Time, out []Notification) []Notification
	// alerts is the part every kind shares: the compiled config and the
	// groups with their windows and states.
	alerts() *rule
}

// alertState is the state of one alert (rule, group).
type alertState int

const (
	stateInactive alertState = iota
	statePending
	stateFiring
)

func (s alertState) String() string {
	switch s {
	case statePending:
		return "pending"
	case stateFiring:
		return "firing"
	}
	return "inactive"
}

// stateResolved names the firing -> inactive transition in telemetry.
const stateResolved = "resolved"

// Reasons for dropped observations.
const (
	reasonMaxGroups    = "max_groups"
	reasonFieldMissing = "field_missing"
	reasonNotANumber   = "not_a_number"
)

// group is one alert: the window and state of a rule for one group_by value set.
type group struct {
	labels map[string]string
	dedup  string
	win    window
	// A baseline rule's group also keeps its history (baseline.go) and the
	// time of its first observation (a younger group has no baseline).
	hist  window
	since time.Time
	base  baselineCache

	state        alertState
	activeAt     time.Time // condition first held (pending, then startsAt)
	lastTrueAt   time.Time
	lastNotified time.Time
	lastRefresh  time.Time
	value        float64
	current      float64 // baseline rules: the window's statistic behind value
	baseline     float64 // baseline rules: the baseline's statistic behind value
	summary      string  // of the last notification
}

// maxSlotsPerWindow bounds the memory of a window: slots are
// evaluation_interval wide unless the window would need more than this many.
const maxSlotsPerWindow = 360

// defaultStatWindow is the window of a rule with a stat and no window.
const defaultStatWindow = 5 * time.Minute

// ruleEnv is what the rules of one engine share: the notification policy
// and where they report transitions, drops and template failures.
type ruleEnv struct {
	maxGroups int
	repeat    time.Duration // repeat_interval
	// refresh is the shortest resend_interval of the notifiers that want
	// keep-alives of firing alerts (0: none); set when the notifiers start.
	refresh    time.Duration
	transition func(r *rule, from, to string)
	dropped    func(r *rule, reason string)
	warn       func(key, msg string)
}

// rule is a compiled RuleConfig and its alerts, one per group.
type rule struct {
	cfg       RuleConfig
	env       *ruleEnv
	name      string
	matcher   *eventmatch.Matcher
	stat      Stat
	op        Op
	threshold float64
	sev       Severity
	tmpl      *template.Template
	window    time.Duration
	slotWidth time.Duration
	groupBy   []string
	newAcc    func() accumulator // the accumulator of stat
	minCount  float64            // min_count
	base      *baseline          // nil without `baseline`
	fp        string             // fingerprint of what the persisted state means (state.go)

	groups map[string]*group
	keyBuf []byte
}

func (r *rule) alerts() *rule { return r }

// statName is the stat as notifications name it: the configured one, else
// `last` (metric rules) or `each` (per-event checks).
func (r *rule) statName() string {
	if r.stat == StatEach {
		return "each"
	}
	return r.stat.String()
}

// compileRule builds the rule of rc: a *metricRule or an *eventRule.
func compileRule(rc RuleConfig, eval time.Duration, env *ruleEnv) (alertingRule, error) {
	r := &rule{cfg: rc, env: env, name: rc.Name, stat: rc.Stat, op: rc.Op, threshold: rc.Threshold, sev: rc.Severity,
		groupBy: rc.GroupBy, groups: map[string]*group{}}
	pattern := rc.Event
	if rc.Metric != "" {
		pattern = rc.Metric
		if r.stat == StatEach {
			r.stat = StatLast
		}
	}
	m, err := eventmatch.New([]string{pattern})
	if err != nil {
		return nil, fmt.Errorf("rule %q: %w", rc.Name, err)
	}
	r.matcher = m
	if r.sev == SeverityUnset {
		r.sev = SeverityWarning
	}
	if r.tmpl, err = parseSummary(rc.Name, rc.Summary, rc.Baseline != nil); err != nil {
		return nil, fmt.Errorf("rule %q: summary: %w", rc.Name, err)
	}
	r.window = rc.window(eval)
	r.slotWidth = max(eval, r.window/maxSlotsPerWindow)
	r.minCount = float64(rc.MinCount)
	r.base = newBaseline(&rc, r.stat, eval)
	r.newAcc = newAccumulator(r.stat, func(v float64) bool { return r.op.eval(v, r.threshold) })
	r.fp = r.fingerprint()
	if len(r.groupBy) == 0 {
		// A rule without group_by is one alert that always exists, so
		// "fewer than N events" fires even when nothing arrives.
		r.groups[""] = &group{labels: map[string]string{}, dedup: dedupKey(r.name, nil)}
	}
	if rc.Metric != "" {
		return &metricRule{rule: r}, nil
	}
	return newEventRule(r, eval), nil
}

// groupFor returns the group of the data's group_by values, creating it (up
// to max_groups); nil means the observation is dropped (and counted).
func (r *rule) groupFor(attrs, res pcommon.Map) *group {
	if len(r.groupBy) == 0 {
		return r.groups[""]
	}
	buf := r.keyBuf[:0]
	for _, k := range r.groupBy {
		v, ok := attrs.Get(k)
		if !ok {
			v, ok = res.Get(k)
		}
		if ok {
			if v.Type() == pcommon.ValueTypeStr {
				buf = append(buf, v.Str()...)
			} else {
				buf = append(buf, v.AsString()...)
			}
		}
		buf = append(buf, 0xff)
	}
	r.keyBuf = buf
	if g, ok := r.groups[string(buf)]; ok {
		return g
	}
	if len(r.groups) >= r.env.maxGroups {
		r.env.dropped(r, reasonMaxGroups)
		return nil
	}
	labels := make(map[string]string, len(r.groupBy))
	parts := strings.Split(string(buf[:len(buf)-1]), "\xff")
	for i, k := range r.groupBy {
		labels[k] = parts[i]
	}
	g := &group{labels: labels, dedup: dedupKey(r.name, labels)}
	r.groups[string(buf)] = g
	return g
}

// groupKey is the key of a group in rule.groups, as groupFor builds it.
func (r *rule) groupKey(labels map[string]string) string {
	var b []byte
	for _, k := range r.groupBy {
		b = append(b, labels[k]...)
		b = append(b, 0xff)
	}
	return string(b)
}

// addMetric adds one data point to g's window, and to its history for a
// baseline rule.
func (r *rule) addMetric(g *group, o *obs, now time.Time) {
	n := o.observations()
	g.win.at(now, r.slotWidth, r.newAcc).addMetric(o, n, now)
	if r.base != nil {
		r.historyAt(g, now).addMetric(o, n, now)
	}
}

// addEvent adds one event (its field's value, or 1) to g's window, and to
// its history for a baseline rule.
func (r *rule) addEvent(g *group, v float64, now time.Time) {
	g.win.at(now, r.slotWidth, r.newAcc).addEvent(v, now)
	if r.base != nil {
		r.historyAt(g, now).addEvent(v, now)
	}
}

// historyAt is the history slot of a baseline rule's group that data at now
// goes into; the group's first observation is now if it has none yet.
func (r *rule) historyAt(g *group, now time.Time) *slot {
	if g.since.IsZero() {
		g.since = now
	}
	s := g.hist.at(now, r.base.width, r.newAcc)
	if !s.start.Add(r.base.width).After(now) {
		// Late data into a slot that has ended (the clock went back): it
		// may be one the cached baseline took.
		g.base.valid = false
	}
	return s
}

// reading is what one evaluation of a group found.
type reading struct {
	value    float64 // compared with the threshold: current, or its ratio or difference to baseline; NaN without a verdict
	current  float64 // the window's statistic; NaN if none
	baseline float64 // the baseline's statistic (normalised); NaN if none or not a baseline rule
	ok       bool    // a verdict: value exists, and the window (and baseline) hold min_count observations
}

// read computes the rule's statistic over g's window at now and, for a
// baseline rule, its baseline and their comparison.
func (r *rule) read(g *group, now time.Time) reading {
	rd := reading{value: math.NaN(), current: math.NaN(), baseline: math.NaN()}
	g.win.expire(now, r.window, r.slotWidth)
	acc, n := g.win.total(len(g.win.slots), r.newAcc)
	cur, ok := acc.value(r.window)
	if ok {
		rd.current = cur
	}
	ok = ok && n >= r.minCount
	if r.base == nil {
		if ok {
			rd.value, rd.ok = cur, true
		}
		return rd
	}
	base, bn, bok := r.base.value(g, now, r.newAcc, r.window)
	if bok {
		rd.baseline = base
	}
	if ok && bok && bn >= r.minCount {
		if v, vok := r.base.compare.apply(cur, base); vok {
			rd.value, rd.ok = v, true
		}
	}
	return rd
}

// value is the value read from g at now, and whether it is a verdict.
func (r *rule) value(g *group, now time.Time) (float64, bool) {
	rd := r.read(g, now)
	return rd.value, rd.ok
}

// idle reports whether g holds nothing to evaluate or resume: inactive, with
// an empty window and history.
func (g *group) idle() bool {
	return g.state == stateInactive && len(g.win.slots) == 0 && len(g.hist.slots) == 0
}

// set keeps what the reading found, for the notifications.
func (g *group) set(rd reading) {
	g.value, g.current, g.baseline = rd.value, rd.current, rd.baseline
}

// eval computes every group's window at now, steps its state machine and
// appends the notifications to send. A group with no data and no alert is
// forgotten (unless it is the one group of a rule without group_by).
func (r *rule) eval(now time.Time, out []Notification) []Notification {
	for key, g := range r.groups {
		rd := r.read(g, now)
		cond := rd.ok && r.op.eval(rd.value, r.threshold)
		out = r.step(g, cond, rd, now, out)
		if g.idle() && len(r.groupBy) > 0 {
			delete(r.groups, key)
		}
	}
	return out
}

// step advances one alert's state machine:
// inactive -> pending (condition holds, `for` > 0) -> firing (held for `for`)
// -> resolved (condition false for keep_firing_for) -> inactive.
func (r *rule) step(g *group, cond bool, rd reading, now time.Time, out []Notification) []Notification {
	if cond {
		g.set(rd)
	}
	switch g.state {
	case stateInactive:
		if !cond {
			return out
		}
		g.activeAt = now
		if r.cfg.For > 0 {
			g.state = statePending
			r.env.transition(r, stateInactive.String(), statePending.String())
			return out
		}
		return r.fire(g, stateInactive, now, out)
	case statePending:
		if !cond {
			g.state = stateInactive
			r.env.transition(r, statePending.String(), stateInactive.String())
			return out
		}
		if now.Sub(g.activeAt) >= r.cfg.For {
			return r.fire(g, statePending, now, out)
		}
	case stateFiring:
		if cond {
			g.lastTrueAt = now
		} else if now.Sub(g.lastTrueAt) >= r.cfg.KeepFiringFor {
			g.state = stateInactive
			r.env.transition(r, stateFiring.String(), stateResolved)
			if !math.IsNaN(rd.value) {
				g.set(rd) // resolved with the value that no longer breaches
			}
			n := r.notification(g, StatusResolved, now)
			n.EndsAt = now
			return append(out, n)
		}
		if r.env.repeat > 0 && now.Sub(g.lastNotified) >= r.env.repeat {
			g.lastNotified, g.lastRefresh = now, now
			n := r.notification(g, StatusFiring, now)
			n.Repeat = true
			return append(out, n)
		}
		if r.env.refresh > 0 && now.Sub(g.lastRefresh) >= r.env.refresh {
			g.lastRefresh = now
			n := r.notification(g, StatusFiring, now)
			n.Refresh = true
			return append(out, n)
		}
	}
	return out
}

func (r *rule) fire(g *group, from alertState, now time.Time, out []Notification) []Notification {
	g.state = stateFiring
	g.lastTrueAt, g.lastNotified, g.lastRefresh = now, now, now
	r.env.transition(r, from.String(), stateFiring.String())
	return append(out, r.notification(g, StatusFiring, now))
}

// count returns the rule's pending and firing alerts.
func (r *rule) count() (pending, firing int64) {
	for _, g := range r.groups {
		switch g.state {
		case statePending:
			pending++
		case stateFiring:
			firing++
		}
	}
	return pending, firing
}
