package alertprocessor // import "github.com/anvil/anvilcol/processor/alertprocessor"

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/anvil/anvilcol/internal/event"
	"github.com/anvil/anvilcol/internal/eventmatch"
	"github.com/anvil/anvilcol/internal/metricstate"
	"github.com/anvil/anvilcol/internal/ratelog"
	"github.com/anvil/anvilcol/processor/alertprocessor/internal/metadata"
)

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

	state        alertState
	activeAt     time.Time // condition first held (pending, then startsAt)
	lastTrueAt   time.Time
	lastNotified time.Time
	lastRefresh  time.Time
	value        float64
	summary      string // of the last notification
}

// engine is the rule engine shared by every pipeline of one component id.
type engine struct {
	cfg    *Config
	logger *zap.Logger
	errLog *ratelog.Logger
	tb     *metadata.TelemetryBuilder
	set    component.TelemetrySettings

	clk     clock
	now     func() time.Time // clk.Now
	started time.Time

	mu          sync.Mutex
	rules       []*rule
	metricRules []*rule
	eventRules  []*rule
	series      map[uint64]*seriesState
	scratch     []bucket
	cur, inc    metricstate.Histogram // the point being differenced, its increase
	keyBuf      []byte

	metricIndex *eventmatch.Index // metric name -> metricRules
	eventIndex  *eventmatch.Index // event.Key -> eventRules
	seen        eventSeen         // events counted recently, under mu

	notifiers []*worker
	refresh   time.Duration // shortest resend_interval of notifiers that want refreshes
	store     *stateStore   // nil without `storage`

	stop chan struct{}
	done chan struct{}
}

func newEngine(cfg *Config, set component.TelemetrySettings, clk clock) (*engine, error) {
	tb, err := metadata.NewTelemetryBuilder(set)
	if err != nil {
		return nil, err
	}
	e := &engine{
		cfg:    cfg,
		logger: set.Logger,
		errLog: ratelog.New(set.Logger, ratelog.DefaultInterval),
		tb:     tb,
		set:    set,
		clk:    clk,
		now:    clk.Now,
		series: map[uint64]*seriesState{},
	}
	e.started = clk.Now()
	for _, rc := range cfg.Rules {
		r, err := compileRule(rc, cfg.EvaluationInterval)
		if err != nil {
			return nil, err
		}
		if len(r.groupBy) == 0 {
			// A rule without group_by is one alert that always exists, so
			// "fewer than N events" fires even when nothing arrives.
			r.groups[""] = &group{labels: map[string]string{}, dedup: dedupKey(r.name, nil)}
		}
		e.rules = append(e.rules, r)
		if r.isMetric {
			e.metricRules = append(e.metricRules, r)
		} else {
			e.eventRules = append(e.eventRules, r)
		}
	}
	e.metricIndex = eventmatch.NewIndex(matchers(e.metricRules))
	e.eventIndex = eventmatch.NewIndex(matchers(e.eventRules))
	e.seen = newEventSeen(cfg.EvaluationInterval)
	if err := tb.RegisterAlertFiringCallback(e.observeFiring); err != nil {
		return nil, err
	}
	if err := tb.RegisterAlertActiveCallback(e.observeActive); err != nil {
		return nil, err
	}
	return e, nil
}

func matchers(rules []*rule) []*eventmatch.Matcher {
	ms := make([]*eventmatch.Matcher, len(rules))
	for i, r := range rules {
		ms[i] = r.matcher
	}
	return ms
}

// ingest is what one consume call keeps while it walks a batch: the rule
// selection of the last name it looked up (the items of one batch often
// share names) and the engine lock, taken at the first item a rule reads (so
// a batch no rule reads never waits for an evaluation) and held until done.
type ingest struct {
	e      *engine
	all    []*rule         // metricRules or eventRules, as memo's selections number them
	memo   eventmatch.Memo // of metricIndex or eventIndex
	locked bool
	now    time.Time

	lastIdx   []int32 // the selection lastRules holds
	lastRules []*rule
}

func (e *engine) metricIngest() ingest {
	return ingest{e: e, all: e.metricRules, memo: e.metricIndex.Memo()}
}

func (e *engine) eventIngest() ingest {
	return ingest{e: e, all: e.eventRules, memo: e.eventIndex.Memo()}
}

// rules returns the rules that read items named name (none for ""), valid
// until the next call.
func (in *ingest) rules(name string) []*rule {
	if name == "" {
		return nil
	}
	idx := in.memo.Select(event.Key{Name: name}).Rules
	if len(idx) == 0 {
		return nil
	}
	if len(idx) != len(in.lastIdx) || &idx[0] != &in.lastIdx[0] {
		in.lastIdx, in.lastRules = idx, in.lastRules[:0]
		for _, i := range idx {
			in.lastRules = append(in.lastRules, in.all[i])
		}
	}
	return in.lastRules
}

// events returns the event an item is and the rules (indices in in.all)
// that read it (none for an item without a name).
func (in *ingest) events(k event.Key) *eventmatch.Selection {
	if k.Name == "" {
		return &noSelection
	}
	return in.memo.Select(k)
}

var noSelection eventmatch.Selection

// lock takes the engine lock, once per batch, and returns the batch's time.
func (in *ingest) lock() time.Time {
	if !in.locked {
		in.e.mu.Lock()
		in.locked = true
		in.now = in.e.now()
	}
	return in.now
}

// done releases the engine lock if the batch took it.
func (in *ingest) done() {
	if in.locked {
		in.e.mu.Unlock()
	}
}

// groupFor returns the group of the data's group_by values, creating it (up
// to max_groups); nil means the observation is dropped (and counted).
func (e *engine) groupFor(r *rule, attrs, res pcommon.Map, now time.Time) *group {
	if len(r.groupBy) == 0 {
		return r.groups[""]
	}
	buf := e.keyBuf[:0]
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
	e.keyBuf = buf
	if g, ok := r.groups[string(buf)]; ok {
		return g
	}
	if len(r.groups) >= e.cfg.MaxGroups {
		e.countDropped(r, reasonMaxGroups)
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

func (e *engine) countDropped(r *rule, reason string) {
	e.tb.AlertObservationsDropped.Add(context.Background(), 1,
		metric.WithAttributes(attribute.String("rule", r.name), attribute.String("reason", reason)))
	e.errLog.Warn("dropped:"+r.name+":"+reason, "alert rule dropped an observation",
		zap.String("rule", r.name), zap.String("reason", reason))
}

// evaluate runs every rule at the engine's current time: each group's
// window is computed, its state machine stepped, notifications queued.
// With `storage`, the state is saved after the notifications are queued: a
// crash in between repeats a notification rather than losing it.
func (e *engine) evaluate() {
	for _, n := range e.evaluateRules() {
		e.dispatch(n)
	}
	e.persist(context.Background())
}

// persist writes the rules whose state changed since the last write.
func (e *engine) persist(ctx context.Context) {
	if e.store == nil {
		return
	}
	e.mu.Lock()
	ops := e.snapshot(e.store)
	e.mu.Unlock()
	if err := e.save(ctx, e.store, ops); err != nil {
		e.tb.AlertStateErrors.Add(context.Background(), 1)
		e.errLog.Error("state:save", "alert state not saved; retrying at the next evaluation", zap.Error(err))
	}
}

// evaluateRules steps every alert and returns the notifications to send.
func (e *engine) evaluateRules() []Notification {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.now()
	var out []Notification
	for _, r := range e.rules {
		for key, g := range r.groups {
			g.win.expire(now, r.window, r.slotWidth)
			a := g.win.total()
			v, ok := a.value(r.stat, r.q, r.window)
			cond := ok && r.op.eval(v, r.threshold)
			if !ok {
				v = math.NaN()
			}
			out = e.step(r, g, cond, v, now, out)
			if g.state == stateInactive && len(g.win.slots) == 0 && len(r.groupBy) > 0 {
				delete(r.groups, key)
			}
		}
	}
	e.expireSeries(now)
	return out
}

// expireSeries forgets cumulative series not seen for longer than the
// longest window (or beyond maxSeries, the stalest).
func (e *engine) expireSeries(now time.Time) {
	var longest time.Duration
	for _, r := range e.rules {
		longest = max(longest, r.window)
	}
	ttl := 2*longest + e.cfg.EvaluationInterval
	for k, s := range e.series {
		if now.Sub(s.seen) > ttl {
			delete(e.series, k)
		}
	}
	if len(e.series) > maxSeries {
		type kv struct {
			k    uint64
			seen time.Time
		}
		all := make([]kv, 0, len(e.series))
		for k, s := range e.series {
			all = append(all, kv{k, s.seen})
		}
		sort.Slice(all, func(i, j int) bool { return all[i].seen.Before(all[j].seen) })
		for _, x := range all[:len(all)-maxSeries] {
			delete(e.series, x.k)
		}
	}
}

// step advances one alert's state machine:
// inactive -> pending (condition holds, `for` > 0) -> firing (held for `for`)
// -> resolved (condition false for keep_firing_for) -> inactive.
func (e *engine) step(r *rule, g *group, cond bool, v float64, now time.Time, out []Notification) []Notification {
	if cond {
		g.value = v
	}
	switch g.state {
	case stateInactive:
		if !cond {
			return out
		}
		g.activeAt = now
		if r.cfg.For > 0 {
			g.state = statePending
			e.transition(r, stateInactive.String(), statePending.String())
			return out
		}
		return e.fire(r, g, stateInactive, now, out)
	case statePending:
		if !cond {
			g.state = stateInactive
			e.transition(r, statePending.String(), stateInactive.String())
			return out
		}
		if now.Sub(g.activeAt) >= r.cfg.For {
			return e.fire(r, g, statePending, now, out)
		}
	case stateFiring:
		if cond {
			g.lastTrueAt = now
		} else if now.Sub(g.lastTrueAt) >= r.cfg.KeepFiringFor {
			g.state = stateInactive
			e.transition(r, stateFiring.String(), stateResolved)
			if !math.IsNaN(v) {
				g.value = v // resolved with the value that no longer breaches
			}
			n := e.notification(r, g, StatusResolved, now)
			n.EndsAt = now
			return append(out, n)
		}
		if e.cfg.RepeatInterval > 0 && now.Sub(g.lastNotified) >= e.cfg.RepeatInterval {
			g.lastNotified, g.lastRefresh = now, now
			n := e.notification(r, g, StatusFiring, now)
			n.Repeat = true
			return append(out, n)
		}
		if e.refresh > 0 && now.Sub(g.lastRefresh) >= e.refresh {
			g.lastRefresh = now
			n := e.notification(r, g, StatusFiring, now)
			n.refresh = true
			return append(out, n)
		}
	}
	return out
}

func (e *engine) fire(r *rule, g *group, from alertState, now time.Time, out []Notification) []Notification {
	g.state = stateFiring
	g.lastTrueAt, g.lastNotified, g.lastRefresh = now, now, now
	e.transition(r, from.String(), stateFiring.String())
	return append(out, e.notification(r, g, StatusFiring, now))
}

func (e *engine) transition(r *rule, from, to string) {
	e.tb.AlertTransitions.Add(context.Background(), 1, metric.WithAttributes(
		attribute.String("rule", r.name), attribute.String("from", from), attribute.String("to", to)))
}

// observeFiring reports the alerts firing per rule and severity.
func (e *engine) observeFiring(_ context.Context, o metric.Int64Observer) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, r := range e.rules {
		var n int64
		for _, g := range r.groups {
			if g.state == stateFiring {
				n++
			}
		}
		o.Observe(n, metric.WithAttributes(attribute.String("rule", r.name), attribute.String("severity", r.sev.String())))
	}
	return nil
}

// observeActive reports the alerts per rule and state (pending, firing).
func (e *engine) observeActive(_ context.Context, o metric.Int64Observer) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, r := range e.rules {
		var pending, firing int64
		for _, g := range r.groups {
			switch g.state {
			case statePending:
				pending++
			case stateFiring:
				firing++
			}
		}
		o.Observe(pending, metric.WithAttributes(attribute.String("rule", r.name), attribute.String("state", statePending.String())))
		o.Observe(firing, metric.WithAttributes(attribute.String("rule", r.name), attribute.String("state", stateFiring.String())))
	}
	return nil
}

// start launches the evaluation loop and the notifier workers.
func (e *engine) start(ws []*worker) {
	e.notifiers = ws
	for _, w := range ws {
		if w.refresh > 0 && (e.refresh == 0 || w.refresh < e.refresh) {
			e.refresh = w.refresh
		}
		w.start()
	}
	e.stop, e.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(e.done)
		t := time.NewTicker(e.cfg.EvaluationInterval)
		defer t.Stop()
		for {
			select {
			case <-e.stop:
				return
			case <-t.C:
				e.evaluate()
			}
		}
	}()
}

// shutdown stops evaluating and gives queued notifications until ctx ends.
func (e *engine) shutdown(ctx context.Context) error {
	if e.stop != nil {
		close(e.stop)
		<-e.done
	}
	var err error
	if e.store != nil {
		e.mu.Lock()
		ops := e.snapshot(e.store)
		e.mu.Unlock()
		err = e.save(ctx, e.store, ops)
		if err != nil {
			e.tb.AlertStateErrors.Add(context.Background(), 1)
			err = fmt.Errorf("save alert state: %w", err)
		}
		err = errors.Join(err, e.store.client.Close(ctx))
	}
	for _, w := range e.notifiers {
		w.shutdown(ctx)
	}
	e.tb.Shutdown()
	return err
}

func (e *engine) dispatch(n Notification) {
	for _, w := range e.notifiers {
		w.offer(n, e.cfg.SendResolved)
	}
}
