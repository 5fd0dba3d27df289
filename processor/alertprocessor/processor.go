package alertprocessor // import "github.com/anvil/anvilcol/processor/alertprocessor"

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor"
	"go.uber.org/zap"

	"github.com/anvil/anvilcol/internal/sharedcomponent"
	"github.com/anvil/anvilcol/processor/alertprocessor/internal/notify"
)

// engines holds the one engine of each component id, used by every pipeline
// that lists the processor (internal/sharedcomponent: it starts with the
// first pipeline's Start and stops at the first Shutdown).
var engines = sharedcomponent.NewMap[component.ID, *shared]()

// shared is the engine of one component id as a component.
type shared struct {
	id     component.ID
	set    component.TelemetrySettings
	engine *engine
}

// handle is one pipeline's view of the shared engine.
type handle struct {
	*sharedcomponent.Component[*shared]
}

func acquire(set processor.Settings, cfg *Config, clk clock) (handle, error) {
	c, err := engines.LoadOrStore(set.ID, func() (*shared, error) {
		e, err := newEngine(cfg, set.TelemetrySettings, clk)
		if err != nil {
			return nil, err
		}
		return &shared{id: set.ID, set: set.TelemetrySettings, engine: e}, nil
	})
	return handle{c}, err
}

// Start starts the engine: notifiers, and the saved state when storage is set.
func (s *shared) Start(ctx context.Context, host component.Host) error {
	e := s.engine
	ns, err := e.newNotifiers(ctx, host)
	if err != nil {
		return err
	}
	var resolved []Notification
	if e.cfg.Storage != nil {
		st, err := openStateStore(ctx, host, *e.cfg.Storage, s.id)
		if err != nil {
			return err
		}
		if resolved, err = e.restore(ctx, st); err != nil {
			_ = st.client.Close(ctx)
			return err
		}
		e.store = st
	}
	sink := notifiersSink{ns}
	ns.Start()
	e.start(sink)
	for _, n := range resolved {
		sink.notify(n)
	}
	s.set.Logger.Info("alert processor started",
		zap.Int("rules", len(e.rules)), zap.Int("notifiers", ns.Len()), zap.Duration("evaluation_interval", e.cfg.EvaluationInterval),
		zap.Bool("persisted_state", e.store != nil))
	return nil
}

// Shutdown stops the engine (saving its state when storage is set).
func (s *shared) Shutdown(ctx context.Context) error {
	err := s.engine.shutdown(ctx)
	s.set.Logger.Info("alert processor stopped")
	return err
}

func (h handle) engine() *engine { return h.Unwrap().engine }

func (h handle) processMetrics(_ context.Context, md pmetric.Metrics) (pmetric.Metrics, error) {
	h.engine().consumeMetrics(md)
	return md, nil
}

func (h handle) processLogs(_ context.Context, ld plog.Logs) (plog.Logs, error) {
	h.engine().consumeLogs(ld)
	return ld, nil
}

func (h handle) processTraces(_ context.Context, td ptrace.Traces) (ptrace.Traces, error) {
	h.engine().consumeTraces(td)
	return td, nil
}

// notifiersSink hands the engine's notifications to the notifiers
// (internal/notify), each filtering and queueing them on its own.
type notifiersSink struct{ ns *notify.Notifiers }

func (s notifiersSink) notify(n Notification)        { s.ns.Offer(n) }
func (s notifiersSink) refresh() time.Duration       { return s.ns.ResendInterval() }
func (s notifiersSink) shutdown(ctx context.Context) { s.ns.Shutdown(ctx) }
