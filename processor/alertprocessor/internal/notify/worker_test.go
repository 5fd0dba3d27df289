package notify

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
)

func TestRetries5xxThenDelivers(t *testing.T) {
	in := newIntake(t, status(http.StatusServiceUnavailable), status(http.StatusInternalServerError), status(http.StatusBadGateway))
	nc := fastRetry(NewConfig(TypeWebhook))
	nc.Endpoint = in.URL
	w, tt := startWorker(t, nc)
	w.offer(firing())
	waitHits(t, in, 4)
	require.Eventually(t, func() bool {
		return counterValue(t, tt, "otelcol_alert_notifications_sent", attribute.String("notifier", "webhook")) == 1
	}, 5*time.Second, 5*time.Millisecond)
	assert.Equal(t, int64(0), counterValue(t, tt, "otelcol_alert_notifications_failed"))
}

func TestPermanent4xxIsNotRetried(t *testing.T) {
	in := newIntake(t, status(http.StatusBadRequest))
	nc := fastRetry(NewConfig(TypeWebhook))
	nc.Endpoint = in.URL
	w, tt := startWorker(t, nc)
	w.offer(firing())
	require.Eventually(t, func() bool {
		return counterValue(t, tt, "otelcol_alert_notifications_failed", attribute.String("notifier", "webhook")) == 1
	}, 5*time.Second, 5*time.Millisecond)
	// The failure is counted after the last attempt (deliver returns): no
	// retry can follow it.
	assert.Len(t, in.Requests(), 1)
}

func TestRetriesGiveUpAfterMaxElapsedTime(t *testing.T) {
	always503 := make([]answer, 1000)
	for i := range always503 {
		always503[i] = status(http.StatusServiceUnavailable)
	}
	in := newIntake(t, always503...)
	nc := fastRetry(NewConfig(TypeWebhook))
	nc.Endpoint = in.URL
	nc.BackOffConfig.MaxElapsedTime = 200 * time.Millisecond
	w, tt := startWorker(t, nc)
	w.offer(firing())
	require.Eventually(t, func() bool {
		return counterValue(t, tt, "otelcol_alert_notifications_failed", attribute.String("notifier", "webhook")) == 1
	}, 5*time.Second, 5*time.Millisecond)
	assert.Greater(t, len(in.Requests()), 2)
}

func TestFullQueueDropsOldestAndCounts(t *testing.T) {
	tt := newTelemetry(t)
	nc := NewConfig(TypeWebhook)
	nc.QueueSize = 2
	rec := &recordingSender{}
	w := newWorker(&nc, destination{sender: rec}, testSettings(t, wallClock{}, tt)) // not started: the queue fills
	for _, rule := range []string{"a", "b", "c"} {
		n := firing()
		n.Rule = rule
		w.offer(n)
	}
	assert.Equal(t, int64(1), counterValue(t, tt, "otelcol_alert_notification_queue_dropped", attribute.String("notifier", "webhook")))
	w.start()
	require.Eventually(t, func() bool { return len(rec.got()) == 2 }, 5*time.Second, 5*time.Millisecond)
	assert.Equal(t, "b", rec.got()[0].Rule, "the oldest (a) was dropped")
	assert.Equal(t, "c", rec.got()[1].Rule)
	w.shutdown(context.Background())
}

func TestMinSeverityAndRefreshFilter(t *testing.T) {
	nc := NewConfig(TypePagerDuty)
	nc.MinSeverity = SeverityError
	set := testSettings(t, wallClock{}, newTelemetry(t))
	set.SendResolved = false
	w := newWorker(&nc, destination{sender: &recordingSender{}}, set)
	for _, sev := range []Severity{SeverityInfo, SeverityWarning, SeverityError, SeverityCritical} {
		n := firing()
		n.Severity = sev
		w.offer(n)
	}
	refresh := firing()
	refresh.Refresh = true
	w.offer(refresh)    // keep-alives are for Alertmanager only
	w.offer(resolved()) // send_resolved false
	assert.Len(t, w.queue, 2, "error and critical only")
}

// blockingSender holds every send until its context ends.
type blockingSender struct{ started chan struct{} }

func (b *blockingSender) send(ctx context.Context, _ Notification) error {
	select {
	case b.started <- struct{}{}:
	default:
	}
	<-ctx.Done()
	return ctx.Err()
}

func TestShutdownCountsWhatItCouldNotDeliver(t *testing.T) {
	tt := newTelemetry(t)
	bs := &blockingSender{started: make(chan struct{}, 1)}
	nc := NewConfig(TypeWebhook)
	w := newWorker(&nc, destination{sender: bs}, testSettings(t, wallClock{}, tt))
	w.start()
	for range 3 {
		w.offer(firing())
	}
	<-bs.started
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	w.shutdown(ctx)
	assert.Equal(t, int64(1), counterValue(t, tt, "otelcol_alert_notifications_failed"), "the one in flight")
	assert.Equal(t, int64(2), counterValue(t, tt, "otelcol_alert_notification_queue_dropped"), "the two still queued")
}

func TestNilNotifiersDoNothing(t *testing.T) {
	var ns *Notifiers
	ns.Start()
	ns.Offer(firing())
	ns.Shutdown(context.Background())
	assert.Zero(t, ns.Len())
	assert.Zero(t, ns.ResendInterval())
}

// What was offered before shutdown is sent, also when the worker found its
// queue empty just before the offer and sees the wake-up and the stop at
// once (a select between two ready channels picks either). The window is a
// few instructions wide: the loop starts each worker and offers after a
// spin of varying length, so that the worker's first look at the queue
// sweeps across the offer.
func TestShutdownSendsWhatWasOfferedBefore(t *testing.T) {
	set := testSettings(t, wallClock{}, newTelemetry(t))
	nc := NewConfig(TypeWebhook)
	lost := 0
	for i := range 5000 {
		rec := &recordingSender{}
		w := newWorker(&nc, destination{sender: rec}, set)
		w.start()
		for s := 0; s < i%64*20; s++ {
			spin.Add(1)
		}
		w.offer(firing())
		w.shutdown(context.Background())
		if len(rec.got()) != 1 {
			lost++
		}
	}
	assert.Zero(t, lost, "notifications offered before shutdown and not sent")
}

var spin atomic.Int64
