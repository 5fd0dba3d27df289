package alertprocessor // import "github.com/anvil/anvilcol/processor/alertprocessor"

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/anvil/anvilcol/internal/httpstatus"
	"github.com/anvil/anvilcol/internal/ratelog"
	"github.com/anvil/anvilcol/processor/alertprocessor/internal/metadata"
)

// sender delivers one notification; an error it returns is retried unless
// it is permanent (see retryable).
type sender interface {
	send(ctx context.Context, n Notification) error
}

// errPermanent marks an error no retry can fix.
var errPermanent = errors.New("permanent")

// retryable: network errors and the statuses httpstatus.Retryable names
// (408, 429, every 5xx), as PagerDuty and Alertmanager clients retry.
func retryable(err error) bool {
	if errors.Is(err, errPermanent) || errors.Is(err, context.Canceled) {
		return false
	}
	var se *httpstatus.StatusError
	if errors.As(err, &se) {
		return httpstatus.Retryable(se.Code)
	}
	return true
}

func retryAfter(err error) time.Duration {
	var se *httpstatus.StatusError
	if errors.As(err, &se) {
		return se.RetryAfter
	}
	return 0
}

// worker owns one notifier: a bounded queue (a full queue drops its oldest
// entry) drained by one goroutine that delivers with retries and exponential
// backoff, so notification I/O never blocks the pipeline.
type worker struct {
	typ      string
	endpoint string // alertmanager: the one Alertmanager this worker posts to (logs only)
	cfg      NotifierConfig
	s        sender
	minSev   severity
	refresh  time.Duration
	attrs    metric.MeasurementOption
	tb       *metadata.TelemetryBuilder
	errLog   *ratelog.Logger
	clk      clock // the processor's: retry deadlines and waits

	mu    sync.Mutex
	queue []Notification
	wake  chan struct{}

	ctx      context.Context
	cancel   context.CancelFunc
	stop     chan struct{}
	stopOnce sync.Once
	done     chan struct{}
}

func newWorker(cfg NotifierConfig, s sender, tb *metadata.TelemetryBuilder, errLog *ratelog.Logger, clk clock) *worker {
	minSev, _ := parseSeverity(cfg.MinSeverity)
	if minSev == 0 {
		minSev = sevInfo
	}
	w := &worker{
		typ: cfg.Type, cfg: cfg, s: s, minSev: minSev,
		attrs: metric.WithAttributes(attribute.String("notifier", cfg.Type)),
		tb:    tb, errLog: errLog, clk: clk,
		wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
	}
	if cfg.Type == notifierAlertmanager {
		w.refresh = cfg.ResendInterval
	}
	w.ctx, w.cancel = context.WithCancel(context.Background())
	return w
}

// offer queues n if this notifier takes it.
func (w *worker) offer(n Notification, sendResolved bool) {
	if n.sev < w.minSev {
		return
	}
	if n.refresh && w.refresh == 0 {
		return
	}
	// Alertmanager always learns of resolutions (its receivers have their own
	// send_resolved); the others only when send_resolved is on.
	if n.Status == StatusResolved && !sendResolved && w.typ != notifierAlertmanager {
		return
	}
	w.mu.Lock()
	if len(w.queue) >= w.cfg.QueueSize {
		copy(w.queue, w.queue[1:])
		w.queue = w.queue[:len(w.queue)-1]
		w.tb.AlertNotificationQueueDropped.Add(context.Background(), 1, w.attrs)
		w.errLog.Warn("queue_full:"+w.typ, "alert notification queue full; dropped the oldest notification",
			zap.String("notifier", w.typ), zap.Int("queue_size", w.cfg.QueueSize))
	}
	w.queue = append(w.queue, n)
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *worker) pop() (Notification, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.queue) == 0 {
		return Notification{}, false
	}
	n := w.queue[0]
	w.queue[0] = Notification{}
	w.queue = w.queue[1:]
	return n, true
}

func (w *worker) start() {
	go w.run()
}

func (w *worker) run() {
	defer close(w.done)
	for {
		n, ok := w.pop()
		if !ok {
			select {
			case <-w.wake:
				continue
			case <-w.stop:
				return
			}
		}
		if w.ctx.Err() != nil {
			w.tb.AlertNotificationQueueDropped.Add(context.Background(), 1, w.attrs)
			continue
		}
		w.deliver(n)
	}
}

// deliver sends n, retrying what can succeed later with exponential backoff
// (cenkalti/backoff, as exporterhelper's retry sender; honouring
// Retry-After) until retry_on_failure.max_elapsed_time, both on the
// processor's clock (the backoff only computes intervals).
func (w *worker) deliver(n Notification) {
	cfg := w.cfg.BackOffConfig
	bo := &backoff.ExponentialBackOff{
		InitialInterval:     cfg.InitialInterval,
		RandomizationFactor: cfg.RandomizationFactor,
		Multiplier:          cfg.Multiplier,
		MaxInterval:         cfg.MaxInterval,
	}
	bo.Reset()
	began := w.clk.Now()
	for {
		err := w.s.send(w.ctx, n)
		if err == nil {
			w.tb.AlertNotificationsSent.Add(context.Background(), 1, w.attrs)
			return
		}
		fail := func(reason string) {
			w.tb.AlertNotificationsFailed.Add(context.Background(), 1, w.attrs)
			w.errLog.Error("send:"+w.typ+":"+w.endpoint, "alert notification failed",
				zap.String("notifier", w.typ), zap.String("endpoint", w.endpoint), zap.String("rule", n.Rule),
				zap.String("reason", reason), zap.Error(err))
		}
		if !retryable(err) {
			fail("permanent error")
			return
		}
		if !cfg.Enabled {
			fail("retry_on_failure disabled")
			return
		}
		wait := max(bo.NextBackOff(), retryAfter(err))
		if cfg.MaxElapsedTime > 0 && w.clk.Now().Sub(began)+wait > cfg.MaxElapsedTime {
			fail("retries exhausted")
			return
		}
		select {
		case <-w.clk.After(wait):
		case <-w.stop:
			fail("shutdown during retries")
			return
		}
	}
}

// shutdown lets the worker send what is queued (no more retries) until ctx
// ends; anything left is counted as dropped.
func (w *worker) shutdown(ctx context.Context) {
	w.stopOnce.Do(func() { close(w.stop) })
	select {
	case <-w.done:
	case <-ctx.Done():
		w.cancel()
		<-w.done
	}
	w.cancel()
}

// postJSON POSTs body as JSON and maps the answer to an error.
func postJSON(ctx context.Context, client *http.Client, url string, body any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return errors.Join(errPermanent, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(b))
	if err != nil {
		return errors.Join(errPermanent, err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if se := httpstatus.FromResponse(resp); se != nil {
		return se
	}
	return nil
}

// jsonFloat encodes NaN and infinities (a window with no data) as null.
type jsonFloat float64

func (f jsonFloat) MarshalJSON() ([]byte, error) {
	v := float64(f)
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return []byte("null"), nil
	}
	return strconv.AppendFloat(nil, v, 'g', -1, 64), nil
}

func formatValue(v float64) string {
	return strconv.FormatFloat(v, 'g', -1, 64)
}

func rfc3339(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// buildWorkers creates every notifier's HTTP client and worker.
func buildWorkers(ctx context.Context, cfg *Config, host component.Host, set component.TelemetrySettings,
	tb *metadata.TelemetryBuilder, errLog *ratelog.Logger, clk clock,
) ([]*worker, error) {
	var ws []*worker
	for i := range cfg.Notifiers {
		nc := cfg.Notifiers[i]
		if !nc.Enabled {
			continue
		}
		if nc.Type == notifierAlertmanager {
			// One worker per Alertmanager of the cluster: each gets every
			// alert, with its own queue and retries (Prometheus' advice).
			for _, u := range nc.alertmanagerEndpoints() {
				hc := nc.ClientConfig
				hc.Endpoint = u
				client, err := hc.ToClient(ctx, host.GetExtensions(), set)
				if err != nil {
					return nil, cfgErr("`notifiers[%d]`: HTTP client for %s: %v", i, u, err)
				}
				w := newWorker(nc, newAlertmanagerSender(client, u, nc.ResendInterval), tb, errLog, clk)
				w.endpoint = u
				ws = append(ws, w)
			}
			continue
		}
		var s sender
		if nc.Type == notifierLog {
			s = &logSender{logger: set.Logger}
		} else {
			hc := nc.ClientConfig
			switch nc.Type {
			case notifierSlack:
				hc.Endpoint = nc.WebhookURL
			case notifierPagerDuty:
				if hc.Endpoint == "" {
					hc.Endpoint = DefaultPagerDutyEndpoint
				}
			}
			client, err := hc.ToClient(ctx, host.GetExtensions(), set)
			if err != nil {
				return nil, cfgErr("`notifiers[%d]`: HTTP client: %v", i, err)
			}
			switch nc.Type {
			case notifierSlack:
				s = newSlackSender(client, hc.Endpoint, nc.Channel, clk)
			case notifierPagerDuty:
				s = newPagerDutySender(client, hc.Endpoint, nc.RoutingKey, nc.Source)
			case notifierWebhook:
				s = &webhookSender{client: client, url: hc.Endpoint}
			}
		}
		ws = append(ws, newWorker(nc, s, tb, errLog, clk))
	}
	return ws, nil
}
