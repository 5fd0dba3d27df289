package alertprocessor // import "github.com/anvil/anvilcol/processor/alertprocessor"

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/anvil/anvilcol/internal/eventmatch"
	"github.com/anvil/anvilcol/internal/ratelog"
	"github.com/anvil/anvilcol/processor/alertprocessor/internal/metadata"
)

// notifySink is where the engine hands its notifications (processor.go
// wires internal/notify's notifiers).
type notifySink interface {
	notify(Notification)
	// refresh is how often a firing alert is re-sent as a keep-alive (the
	// shortest resend_interval of the notifiers that want them; 0: never).
	refresh() time.Duration
	shutdown(ctx context.Context)
}

// engine is the rule engine shared by every pipeline of one component id:
// ingestion (ingest_*.go) feeds the rules observations; the engine
// evaluates every rule each evaluation_interval on its clock, hands the
// notifications to the sink and saves the state (state.go).
type engine struct {
	cfg    *Config
	logger *zap.Logger
	errLog *ratelog.Logger
	tb     *metadata.TelemetryBuilder
	set    component.TelemetrySettings

	clk     clock
	now     func() time.Time // clk.Now
	started time.Time

	ruleEnv // what the rules share; refresh is set at start

	mu          sync.Mutex // guards the rules' groups, the events they counted recently (eventSeen) and the series
	rules       []alertingRule
	metricRules []*metricRule
	eventRules  []*eventRule
	metricIndex *eventmatch.Index // metric name -> metricRules (selection.go)
	eventIndex  *eventmatch.Index // event.Key of a log record or span -> eventRules
	series      *seriesTracker
	longest     time.Duration // the longest window: series unseen for longer are forgotten

	sink  notifySink
	store *stateStore // nil without `storage`

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
	}
	e.started = clk.Now()
	e.series = newSeriesTracker(e.started)
	e.ruleEnv = ruleEnv{maxGroups: cfg.MaxGroups, repeat: cfg.RepeatInterval,
		transition: e.countTransition, dropped: e.countDropped, warn: func(key, msg string) { e.errLog.Warn(key, msg) }}
	for _, rc := range cfg.Rules {
		ar, err := compileRule(rc, cfg.EvaluationInterval, &e.ruleEnv)
		if err != nil {
			return nil, err
		}
		e.rules = append(e.rules, ar)
		e.longest = max(e.longest, ar.alerts().window)
		switch r := ar.(type) {
		case *metricRule:
			e.metricRules = append(e.metricRules, r)
		case *eventRule:
			e.eventRules = append(e.eventRules, r)
		}
	}
	e.metricIndex = newIndex(e.metricRules)
	e.eventIndex = newIndex(e.eventRules)
	// Every transition series of every rule is exposed at 0 from the start,
	// so that Prometheus' increase() counts a rule's first transition too
	// (deploy/README.md: a counter first seen at 1 is never counted).
	for _, ar := range e.rules {
		for _, t := range transitions {
			e.tb.AlertTransitions.Add(context.Background(), 0, metric.WithAttributes(
				attribute.String("rule", ar.alerts().name), attribute.String("from", t[0]), attribute.String("to", t[1])))
		}
	}
	if err := tb.RegisterAlertFiringCallback(e.observeFiring); err != nil {
		return nil, err
	}
	if err := tb.RegisterAlertActiveCallback(e.observeActive); err != nil {
		return nil, err
	}
	return e, nil
}

// batchLock is the engine lock as one consume call takes it: at the first
// item a rule reads (so a batch no rule reads never waits for an
// evaluation), once, and held until the batch is done; now is the batch's time.
type batchLock struct {
	e      *engine
	locked bool
	now    time.Time
}

// lock takes the engine lock, once per batch, and returns the batch's time.
func (b *batchLock) lock() time.Time {
	if !b.locked {
		b.e.mu.Lock()
		b.locked = true
		b.now = b.e.now()
	}
	return b.now
}

// done releases the engine lock if the batch took it.
func (b *batchLock) done() {
	if b.locked {
		b.e.mu.Unlock()
	}
}

func (e *engine) countDropped(r *rule, reason string) {
	e.tb.AlertObservationsDropped.Add(context.Background(), 1,
		metric.WithAttributes(attribute.String("rule", r.name), attribute.String("reason", reason)))
	e.errLog.Warn("dropped:"+r.name+":"+reason, "alert rule dropped an observation",
		zap.String("rule", r.name), zap.String("reason", reason))
}

// transitions are the (from, to) pairs an alert's state machine reports
// (rule.go).
var transitions = [][2]string{
	{stateInactive.String(), statePending.String()},
	{statePending.String(), stateInactive.String()},
	{statePending.String(), stateFiring.String()},
	{stateInactive.String(), stateFiring.String()},
	{stateFiring.String(), stateResolved},
}

func (e *engine) countTransition(r *rule, from, to string) {
	e.tb.AlertTransitions.Add(context.Background(), 1, metric.WithAttributes(
		attribute.String("rule", r.name), attribute.String("from", from), attribute.String("to", to)))
}

// evaluate runs every rule at the engine's current time and hands the
// notifications to the sink. With `storage`, the state is saved after the
// notifications are handed over: a crash in between repeats a notification
// rather than losing it.
func (e *engine) evaluate() {
	for _, n := range e.evaluateRules() {
		e.sink.notify(n)
	}
	e.persist(context.Background())
}

// evaluateRules evaluates every rule at the clock's time and returns the
// notifications to send; cumulative series not seen for longer than the
// longest window are forgotten.
func (e *engine) evaluateRules() []Notification {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.now()
	var out []Notification
	for _, r := range e.rules {
		out = r.eval(now, out)
	}
	e.series.expire(now, 2*e.longest+e.cfg.EvaluationInterval)
	return out
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

// observeFiring reports the alerts firing per rule and severity.
func (e *engine) observeFiring(_ context.Context, o metric.Int64Observer) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, ar := range e.rules {
		r := ar.alerts()
		_, firing := r.count()
		o.Observe(firing, metric.WithAttributes(attribute.String("rule", r.name), attribute.String("severity", r.sev.String())))
	}
	return nil
}

// observeActive reports the alerts per rule and state (pending, firing).
func (e *engine) observeActive(_ context.Context, o metric.Int64Observer) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, ar := range e.rules {
		r := ar.alerts()
		pending, firing := r.count()
		o.Observe(pending, metric.WithAttributes(attribute.String("rule", r.name), attribute.String("state", statePending.String())))
		o.Observe(firing, metric.WithAttributes(attribute.String("rule", r.name), attribute.String("state", stateFiring.String())))
	}
	return nil
}

// start hands notifications to sink from now on and launches the
// evaluation loop: every evaluation_interval on the engine's clock.
func (e *engine) start(sink notifySink) {
	e.sink = sink
	e.mu.Lock()
	e.refresh = sink.refresh()
	e.mu.Unlock()
	e.stop, e.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(e.done)
		next := e.now()
		for {
			next = next.Add(e.cfg.EvaluationInterval)
			select {
			case <-e.stop:
				return
			case <-e.clk.After(next.Sub(e.now())):
				e.evaluate()
			}
			if now := e.now(); now.After(next) {
				next = now // evaluations that fell behind are skipped, as a ticker's ticks are
			}
		}
	}()
}

// shutdown stops evaluating, saves the state, and gives the sink until ctx
// ends to deliver what it holds.
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
	if e.sink != nil {
		e.sink.shutdown(ctx)
	}
	e.tb.Shutdown()
	return err
}
