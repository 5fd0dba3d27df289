package notify // import "github.com/anvil/anvilcol/processor/alertprocessor/internal/notify"

import (
	"context"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"
)

// sender delivers one notification; an error it returns is retried unless
// it is permanent (see retryable).
type sender interface {
	send(ctx context.Context, n Notification) error
}

// destination is one place a notifier delivers to, built by its type's
// constructor: one per notifier, one per Alertmanager of a cluster.
type destination struct {
	sender   sender
	endpoint string        // named in failure logs (alertmanager: the member's URL)
	resend   time.Duration // takes keep-alives (Notification.Refresh) at this interval; 0: none
	// allResolved takes resolutions even without send_resolved
	// (Alertmanager's receivers have their own send_resolved).
	allResolved bool
}

// worker owns one destination: a bounded queue (a full queue drops its
// oldest entry) drained by one goroutine that delivers with retries and
// exponential backoff, so notification I/O never blocks the pipeline.
type worker struct {
	destination
	typ          string
	cfg          *Config
	sendResolved bool
	attrs        metric.MeasurementOption
	set          Settings

	mu    sync.Mutex
	queue []Notification
	wake  chan struct{}

	ctx      context.Context
	cancel   context.CancelFunc
	stop     chan struct{}
	stopOnce sync.Once
	done     chan struct{}
}

func newWorker(cfg *Config, d destination, set Settings) *worker {
	w := &worker{
		destination: d, typ: cfg.Type, cfg: cfg, sendResolved: set.SendResolved,
		attrs: metric.WithAttributes(attribute.String("notifier", cfg.Type)),
		set:   set,
		wake:  make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
	}
	w.ctx, w.cancel = context.WithCancel(context.Background())
	return w
}

// offer queues n if this destination takes it.
func (w *worker) offer(n Notification) {
	if n.Severity < w.cfg.MinSeverity {
		return
	}
	if n.Refresh && w.resend == 0 {
		return
	}
	if n.Status == StatusResolved && !w.sendResolved && !w.allResolved {
		return
	}
	w.mu.Lock()
	if len(w.queue) >= w.cfg.QueueSize {
		copy(w.queue, w.queue[1:])
		w.queue = w.queue[:len(w.queue)-1]
		w.set.Counters.Dropped.Add(context.Background(), 1, w.attrs)
		w.set.ErrLog.Warn("queue_full:"+w.typ, "alert notification queue full; dropped the oldest notification",
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
			}
			// Stopping: an offer may have come between the pop and the
			// select (both channels ready, either picked): send what is
			// queued before returning.
			if n, ok = w.pop(); !ok {
				return
			}
		}
		if w.ctx.Err() != nil {
			w.set.Counters.Dropped.Add(context.Background(), 1, w.attrs)
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
	clk := w.set.Clock
	began := clk.Now()
	for {
		err := w.sender.send(w.ctx, n)
		if err == nil {
			w.set.Counters.Sent.Add(context.Background(), 1, w.attrs)
			return
		}
		fail := func(reason string) {
			w.set.Counters.Failed.Add(context.Background(), 1, w.attrs)
			w.set.ErrLog.Error("send:"+w.typ+":"+w.endpoint, "alert notification failed",
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
		if cfg.MaxElapsedTime > 0 && clk.Now().Sub(began)+wait > cfg.MaxElapsedTime {
			fail("retries exhausted")
			return
		}
		select {
		case <-clk.After(wait):
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
