package alertprocessor // import "github.com/anvil/anvilcol/processor/alertprocessor"

import (
	"context"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor"
	"go.uber.org/zap"
)

// shared is the one engine of a component id, used by every pipeline that
// lists the processor; it starts with the first pipeline and stops with the last.
type shared struct {
	id      component.ID
	set     component.TelemetrySettings
	engine  *engine
	refs    int
	started bool
}

var (
	sharedMu sync.Mutex
	engines  = map[component.ID]*shared{}
)

// clock is the engine's time source (engine tests build engines on a fake one).
var clock = time.Now

// handle is one pipeline's view of the shared engine.
type handle struct {
	s        *shared
	shutOnce sync.Once
}

func acquire(set processor.Settings, cfg *Config) (*handle, error) {
	sharedMu.Lock()
	defer sharedMu.Unlock()
	s, ok := engines[set.ID]
	if !ok {
		e, err := newEngine(cfg, set.TelemetrySettings, clock)
		if err != nil {
			return nil, err
		}
		s = &shared{id: set.ID, set: set.TelemetrySettings, engine: e}
		engines[set.ID] = s
	}
	s.refs++
	return &handle{s: s}, nil
}

// Start starts the engine on the first pipeline's Start.
func (h *handle) Start(ctx context.Context, host component.Host) error {
	sharedMu.Lock()
	defer sharedMu.Unlock()
	s := h.s
	if s.started {
		return nil
	}
	e := s.engine
	ws, err := buildWorkers(ctx, e.cfg, host, s.set, e.tb, e.errLog)
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
	e.start(ws)
	for _, n := range resolved {
		e.dispatch(n)
	}
	s.started = true
	s.set.Logger.Info("alert processor started",
		zap.Int("rules", len(e.rules)), zap.Int("notifiers", len(ws)), zap.Duration("evaluation_interval", e.cfg.EvaluationInterval),
		zap.Bool("persisted_state", e.store != nil))
	return nil
}

// Shutdown stops the engine when the last pipeline using it shuts down.
func (h *handle) Shutdown(ctx context.Context) error {
	var last *shared
	h.shutOnce.Do(func() {
		sharedMu.Lock()
		h.s.refs--
		if h.s.refs == 0 {
			last = h.s
			delete(engines, h.s.id)
		}
		sharedMu.Unlock()
	})
	if last == nil {
		return nil
	}
	err := last.engine.shutdown(ctx)
	last.set.Logger.Info("alert processor stopped")
	return err
}

func (h *handle) processMetrics(_ context.Context, md pmetric.Metrics) (pmetric.Metrics, error) {
	h.s.engine.consumeMetrics(md)
	return md, nil
}

func (h *handle) processLogs(_ context.Context, ld plog.Logs) (plog.Logs, error) {
	h.s.engine.consumeLogs(ld)
	return ld, nil
}

func (h *handle) processTraces(_ context.Context, td ptrace.Traces) (ptrace.Traces, error) {
	h.s.engine.consumeTraces(td)
	return td, nil
}
