package alertprocessor

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/otel/attribute"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/anvil/anvilcol/internal/e2etest"
	"github.com/anvil/anvilcol/internal/ratelog"
	"github.com/anvil/anvilcol/processor/alertprocessor/internal/metadata"
)

// recordingSender keeps what it is asked to send.
type recordingSender struct {
	mu sync.Mutex
	ns []Notification
}

func (r *recordingSender) send(_ context.Context, n Notification) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ns = append(r.ns, n)
	return nil
}

func (r *recordingSender) got() []Notification {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Notification(nil), r.ns...)
}

// answer is how an intake answers one request.
type answer struct {
	code int
	hdr  http.Header
}

// status is an answer with code, the header pairs hdr and a JSON error body.
func status(code int, hdr ...string) answer {
	h := http.Header{}
	for i := 0; i+1 < len(hdr); i += 2 {
		h.Set(hdr[i], hdr[i+1])
	}
	return answer{code: code, hdr: h}
}

// newIntake starts a recording HTTP server that answers its n-th request
// with answers[n-1] and every later one 202.
func newIntake(t *testing.T, answers ...answer) *e2etest.Intake {
	in := e2etest.NewIntake(t)
	in.Respond(func(r e2etest.Request) (int, http.Header, []byte) {
		if r.Seq <= len(answers) {
			a := answers[r.Seq-1]
			return a.code, a.hdr, []byte(`{"status":"error"}`)
		}
		return http.StatusAccepted, nil, nil
	})
	return in
}

// buildTestWorkers builds nc's workers the way Start does, on clk, with
// their own telemetry; they are not started.
func buildTestWorkers(t *testing.T, clk clock, nc NotifierConfig) ([]*worker, *componenttest.Telemetry) {
	t.Helper()
	tt := componenttest.NewTelemetry()
	t.Cleanup(func() { _ = tt.Shutdown(context.Background()) })
	set := tt.NewTelemetrySettings()
	tb, err := metadata.NewTelemetryBuilder(set)
	require.NoError(t, err)
	cfg := createDefaultConfig().(*Config)
	cfg.Notifiers = []NotifierConfig{nc}
	require.NoError(t, cfg.Validate())
	ws, err := buildWorkers(context.Background(), cfg, componenttest.NewNopHost(), set, tb, nopErrLog(), clk)
	require.NoError(t, err)
	return ws, tt
}

func nopErrLog() *ratelog.Logger { return ratelog.New(zap.NewNop(), time.Minute) }

// startWorker builds nc's worker on the wall clock and runs it.
func startWorker(t *testing.T, nc NotifierConfig) (*worker, *componenttest.Telemetry) {
	return startWorkerOn(t, wallClock{}, nc)
}

// startWorkerOn is startWorker on clk.
func startWorkerOn(t *testing.T, clk clock, nc NotifierConfig) (*worker, *componenttest.Telemetry) {
	t.Helper()
	ws, tt := buildTestWorkers(t, clk, nc)
	ws[0].start()
	t.Cleanup(func() { ws[0].shutdown(context.Background()) })
	return ws[0], tt
}

// clockedIntake is newIntake that also records clk's time at each request.
func clockedIntake(t *testing.T, clk *fakeClock, answers ...answer) (*e2etest.Intake, func() []time.Time) {
	in := newIntake(t, answers...)
	var mu sync.Mutex
	var at []time.Time
	in.Respond(func(r e2etest.Request) (int, http.Header, []byte) {
		mu.Lock()
		at = append(at, clk.Now())
		mu.Unlock()
		if r.Seq <= len(answers) {
			a := answers[r.Seq-1]
			return a.code, a.hdr, []byte(`{"status":"error"}`)
		}
		return http.StatusAccepted, nil, nil
	})
	return in, func() []time.Time {
		mu.Lock()
		defer mu.Unlock()
		return append([]time.Time(nil), at...)
	}
}

func fastRetry(nc NotifierConfig) NotifierConfig {
	nc.BackOffConfig.InitialInterval = 10 * time.Millisecond
	nc.BackOffConfig.MaxInterval = 20 * time.Millisecond
	nc.BackOffConfig.MaxElapsedTime = 3 * time.Second
	return nc
}

var (
	t0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	t1 = t0.Add(90 * time.Second)
)

func firing() Notification {
	return Notification{
		Rule: "dispatch_latency_p99", Status: StatusFiring, Severity: "critical", sev: sevCritical,
		Summary: "Assignment dispatch p99 612.5 ms > 500 ms (round_robin)", Value: 612.5, Threshold: 500, Op: ">", Stat: "p99",
		Labels:   map[string]string{"policy_type": "round_robin"},
		DedupKey: dedupKey("dispatch_latency_p99", map[string]string{"policy_type": "round_robin"}),
		StartsAt: t0, At: t0,
	}
}

func resolved() Notification {
	n := firing()
	n.Status, n.Value, n.EndsAt, n.At = StatusResolved, 120, t1, t1
	n.Summary = "Assignment dispatch p99 120 ms > 500 ms (round_robin)"
	return n
}

func decode(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m), string(b))
	return m
}

func waitHits(t *testing.T, in *e2etest.Intake, n int) []e2etest.Request {
	t.Helper()
	require.Eventually(t, func() bool { return len(in.Requests()) >= n }, 10*time.Second, 5*time.Millisecond, "want %d requests", n)
	return in.Requests()
}

func TestSlackPayload(t *testing.T) {
	in := newIntake(t)
	nc := NewNotifierConfig(notifierSlack)
	nc.WebhookURL = in.URL + "/services/T/B/X"
	nc.Channel = "#anvil-alerts"
	clk := newFakeClock() // the second message waits for its pacing slot on it
	w, tt := startWorkerOn(t, clk, nc)
	w.offer(firing(), true)
	h := waitHits(t, in, 1)[0]
	assert.Equal(t, "/services/T/B/X", h.Path)
	assert.Equal(t, "application/json", h.Header.Get("Content-Type"))
	m := decode(t, h.Body)
	assert.Equal(t, "#anvil-alerts", m["channel"])
	assert.Equal(t, "[FIRING:critical] dispatch_latency_p99: Assignment dispatch p99 612.5 ms > 500 ms (round_robin)", m["text"])
	blocks := m["blocks"].([]any)
	require.Len(t, blocks, 1)
	sec := blocks[0].(map[string]any)
	assert.Equal(t, "section", sec["type"])
	text := sec["text"].(map[string]any)
	assert.Equal(t, "mrkdwn", text["type"])
	assert.Equal(t, "*[FIRING:critical] dispatch_latency_p99*\nAssignment dispatch p99 612.5 ms > 500 ms (round_robin)", text["text"])
	var fields []string
	for _, f := range sec["fields"].([]any) {
		ff := f.(map[string]any)
		assert.Equal(t, "mrkdwn", ff["type"])
		fields = append(fields, ff["text"].(string))
	}
	assert.Equal(t, []string{
		"*Value*\n612.5", "*Threshold*\np99 > 500", "*Severity*\ncritical",
		"*Labels*\npolicy_type=round_robin", "*Since*\n2026-03-01T10:00:00Z",
	}, fields)
	require.Eventually(t, func() bool {
		return counterValue(t, tt, "otelcol_alert_notifications_sent", attribute.String("notifier", "slack")) == 1
	}, 5*time.Second, 5*time.Millisecond)

	w.offer(resolved(), true)
	runClock(t, clk, func() bool { return len(in.Requests()) >= 2 })
	m = decode(t, in.Requests()[1].Body)
	assert.Equal(t, "[RESOLVED] dispatch_latency_p99: Assignment dispatch p99 120 ms > 500 ms (round_robin)", m["text"])
}

func TestSlackPacesOneMessagePerSecondAndHonours429(t *testing.T) {
	clk := newFakeClock()
	in, times := clockedIntake(t, clk, status(http.StatusTooManyRequests, "Retry-After", "2"))
	nc := fastRetry(NewNotifierConfig(notifierSlack))
	nc.WebhookURL = in.URL
	w, tt := startWorkerOn(t, clk, nc)
	for range 3 {
		w.offer(firing(), true)
	}
	// The pacing and the retry wait on the fake clock: runClock moves it
	// to each slot, no real second passes.
	runClock(t, clk, func() bool { return len(in.Requests()) >= 4 })
	at := times()
	require.Len(t, at, 4)
	// 1st answered 429 Retry-After: 2 -> the retry waits 2s; then 1/s.
	assert.Equal(t, 2*time.Second, at[1].Sub(at[0]))
	assert.Equal(t, time.Second, at[2].Sub(at[1]))
	assert.Equal(t, time.Second, at[3].Sub(at[2]))
	require.Eventually(t, func() bool {
		return counterValue(t, tt, "otelcol_alert_notifications_sent", attribute.String("notifier", "slack")) == 3
	}, 5*time.Second, 5*time.Millisecond)
	assert.Equal(t, int64(0), counterValue(t, tt, "otelcol_alert_notifications_failed"))
}

func TestPagerDutyPayload(t *testing.T) {
	in := newIntake(t)
	nc := NewNotifierConfig(notifierPagerDuty)
	nc.Endpoint = in.URL + "/v2/enqueue"
	nc.RoutingKey = "R0UT1NGKEY0123456789abcdef012345"
	nc.Source = "anvilcol-gateway-1"
	w, _ := startWorker(t, nc)
	w.offer(firing(), true)
	w.offer(resolved(), true)
	hs := waitHits(t, in, 2)
	assert.Equal(t, "/v2/enqueue", hs[0].Path)

	trig := decode(t, hs[0].Body)
	assert.Equal(t, nc.RoutingKey, trig["routing_key"])
	assert.Equal(t, "trigger", trig["event_action"])
	assert.Equal(t, firing().DedupKey, trig["dedup_key"])
	p := trig["payload"].(map[string]any)
	assert.Equal(t, "Assignment dispatch p99 612.5 ms > 500 ms (round_robin)", p["summary"])
	assert.Equal(t, "anvilcol-gateway-1", p["source"])
	assert.Equal(t, "critical", p["severity"])
	assert.Equal(t, "2026-03-01T10:00:00Z", p["timestamp"])
	assert.Equal(t, "dispatch_latency_p99", p["class"])
	cd := p["custom_details"].(map[string]any)
	assert.Equal(t, 612.5, cd["value"])
	assert.Equal(t, 500.0, cd["threshold"])
	assert.Equal(t, ">", cd["op"])
	assert.Equal(t, "p99", cd["stat"])
	assert.Equal(t, "dispatch_latency_p99", cd["rule"])
	assert.Equal(t, map[string]any{"policy_type": "round_robin"}, cd["labels"])

	res := decode(t, hs[1].Body)
	assert.Equal(t, "resolve", res["event_action"])
	assert.Equal(t, trig["dedup_key"], res["dedup_key"], "resolve names the alert trigger opened")
	assert.Equal(t, nc.RoutingKey, res["routing_key"])
}

func TestPagerDutyDefaultEndpoint(t *testing.T) {
	nc := NewNotifierConfig(notifierPagerDuty)
	nc.RoutingKey = "k"
	cfg := createDefaultConfig().(*Config)
	cfg.Notifiers = []NotifierConfig{nc}
	tb, err := metadata.NewTelemetryBuilder(componenttest.NewNopTelemetrySettings())
	require.NoError(t, err)
	ws, err := buildWorkers(context.Background(), cfg, componenttest.NewNopHost(), componenttest.NewNopTelemetrySettings(), tb, nopErrLog(), wallClock{})
	require.NoError(t, err)
	assert.Equal(t, DefaultPagerDutyEndpoint, ws[0].s.(*pagerDutySender).url)
}

func TestAlertmanagerPayload(t *testing.T) {
	in := newIntake(t, status(http.StatusOK))
	nc := NewNotifierConfig(notifierAlertmanager)
	nc.Endpoint = in.URL + "/"
	w, _ := startWorker(t, nc)
	w.offer(firing(), false)
	w.offer(resolved(), false) // alertmanager learns of resolutions even without send_resolved
	hs := waitHits(t, in, 2)
	assert.Equal(t, "/api/v2/alerts", hs[0].Path)
	var alerts []map[string]any
	require.NoError(t, json.Unmarshal(hs[0].Body, &alerts))
	require.Len(t, alerts, 1)
	a := alerts[0]
	assert.Equal(t, map[string]any{"alertname": "dispatch_latency_p99", "severity": "critical", "policy_type": "round_robin"}, a["labels"])
	assert.Equal(t, map[string]any{
		"summary": "Assignment dispatch p99 612.5 ms > 500 ms (round_robin)", "value": "612.5", "threshold": "> 500",
	}, a["annotations"])
	assert.Equal(t, "2026-03-01T10:00:00Z", a["startsAt"])
	assert.Equal(t, "2026-03-01T10:04:00Z", a["endsAt"], "firing: 4 resend intervals ahead")

	require.NoError(t, json.Unmarshal(hs[1].Body, &alerts))
	assert.Equal(t, "2026-03-01T10:00:00Z", alerts[0]["startsAt"])
	assert.Equal(t, "2026-03-01T10:01:30Z", alerts[0]["endsAt"], "resolved: the resolution time")
}

func TestAlertmanagerLabelNamesAreSanitized(t *testing.T) {
	n := firing()
	n.Labels = map[string]string{"service.name": "anvil", "alertname": "x", "empty": ""}
	a := alertmanagerPayload(n, time.Minute)[0]
	assert.Equal(t, map[string]string{"alertname": "dispatch_latency_p99", "severity": "critical", "service_name": "anvil", "group_alertname": "x"}, a.Labels)
}

func TestWebhookPayloadAndHeaders(t *testing.T) {
	in := newIntake(t, status(http.StatusOK))
	nc := NewNotifierConfig(notifierWebhook)
	nc.Endpoint = in.URL + "/hooks/anvil"
	nc.Headers = configopaque.MapList{{Name: "Authorization", Value: "Bearer s3cret"}, {Name: "X-Team", Value: "labeling"}}
	w, _ := startWorker(t, nc)
	w.offer(firing(), true)
	w.offer(resolved(), true)
	hs := waitHits(t, in, 2)
	assert.Equal(t, "/hooks/anvil", hs[0].Path)
	assert.Equal(t, "Bearer s3cret", hs[0].Header.Get("Authorization"))
	assert.Equal(t, "labeling", hs[0].Header.Get("X-Team"))
	assert.Equal(t, map[string]any{
		"version": "1", "status": "firing", "repeat": false, "rule": "dispatch_latency_p99", "severity": "critical",
		"summary": "Assignment dispatch p99 612.5 ms > 500 ms (round_robin)", "value": 612.5, "threshold": 500.0,
		"op": ">", "stat": "p99", "labels": map[string]any{"policy_type": "round_robin"},
		"dedup_key": firing().DedupKey, "starts_at": "2026-03-01T10:00:00Z", "timestamp": "2026-03-01T10:00:00Z",
	}, decode(t, hs[0].Body))
	r := decode(t, hs[1].Body)
	assert.Equal(t, "resolved", r["status"])
	assert.Equal(t, "2026-03-01T10:01:30Z", r["ends_at"])
	assert.Equal(t, 120.0, r["value"])
}

func TestLogNotifier(t *testing.T) {
	core, logs := observer.New(zap.InfoLevel)
	s := &logSender{logger: zap.New(core)}
	require.NoError(t, s.send(context.Background(), firing()))
	require.Equal(t, 1, logs.Len())
	e := logs.All()[0]
	assert.Equal(t, "alert firing", e.Message)
	f := e.ContextMap()
	assert.Equal(t, "dispatch_latency_p99", f["rule"])
	assert.Equal(t, "critical", f["severity"])
	assert.Equal(t, 612.5, f["value"])
	assert.Equal(t, 500.0, f["threshold"])
	assert.Equal(t, firing().DedupKey, f["dedup_key"])
}

func TestRetries5xxThenDelivers(t *testing.T) {
	in := newIntake(t, status(http.StatusServiceUnavailable), status(http.StatusInternalServerError), status(http.StatusBadGateway))
	nc := fastRetry(NewNotifierConfig(notifierWebhook))
	nc.Endpoint = in.URL
	w, tt := startWorker(t, nc)
	w.offer(firing(), true)
	waitHits(t, in, 4)
	require.Eventually(t, func() bool {
		return counterValue(t, tt, "otelcol_alert_notifications_sent", attribute.String("notifier", "webhook")) == 1
	}, 5*time.Second, 5*time.Millisecond)
	assert.Equal(t, int64(0), counterValue(t, tt, "otelcol_alert_notifications_failed"))
}

func TestRetry429HonoursRetryAfter(t *testing.T) {
	clk := newFakeClock()
	in, times := clockedIntake(t, clk, status(http.StatusTooManyRequests, "Retry-After", "1"))
	nc := fastRetry(NewNotifierConfig(notifierPagerDuty))
	nc.Endpoint, nc.RoutingKey = in.URL, "k"
	w, _ := startWorkerOn(t, clk, nc)
	w.offer(firing(), true)
	runClock(t, clk, func() bool { return len(in.Requests()) >= 2 })
	at := times()
	assert.Equal(t, time.Second, at[1].Sub(at[0]), "Retry-After: 1 beats the 10ms backoff")
}

func TestPermanent4xxIsNotRetried(t *testing.T) {
	in := newIntake(t, status(http.StatusBadRequest))
	nc := fastRetry(NewNotifierConfig(notifierWebhook))
	nc.Endpoint = in.URL
	w, tt := startWorker(t, nc)
	w.offer(firing(), true)
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
	nc := fastRetry(NewNotifierConfig(notifierWebhook))
	nc.Endpoint = in.URL
	nc.BackOffConfig.MaxElapsedTime = 200 * time.Millisecond
	w, tt := startWorker(t, nc)
	w.offer(firing(), true)
	require.Eventually(t, func() bool {
		return counterValue(t, tt, "otelcol_alert_notifications_failed", attribute.String("notifier", "webhook")) == 1
	}, 5*time.Second, 5*time.Millisecond)
	assert.Greater(t, len(in.Requests()), 2)
}

func TestFullQueueDropsOldestAndCounts(t *testing.T) {
	tt := componenttest.NewTelemetry()
	t.Cleanup(func() { _ = tt.Shutdown(context.Background()) })
	tb, err := metadata.NewTelemetryBuilder(tt.NewTelemetrySettings())
	require.NoError(t, err)
	nc := NewNotifierConfig(notifierWebhook)
	nc.QueueSize = 2
	rec := &recordingSender{}
	w := newWorker(nc, rec, tb, nopErrLog(), wallClock{}) // not started: the queue fills
	for _, rule := range []string{"a", "b", "c"} {
		n := firing()
		n.Rule = rule
		w.offer(n, true)
	}
	assert.Equal(t, int64(1), counterValue(t, tt, "otelcol_alert_notification_queue_dropped", attribute.String("notifier", "webhook")))
	w.start()
	require.Eventually(t, func() bool { return len(rec.got()) == 2 }, 5*time.Second, 5*time.Millisecond)
	assert.Equal(t, "b", rec.got()[0].Rule, "the oldest (a) was dropped")
	assert.Equal(t, "c", rec.got()[1].Rule)
	w.shutdown(context.Background())
}

func TestMinSeverityAndRefreshFilter(t *testing.T) {
	tb, err := metadata.NewTelemetryBuilder(componenttest.NewNopTelemetrySettings())
	require.NoError(t, err)
	nc := NewNotifierConfig(notifierPagerDuty)
	nc.MinSeverity = "error"
	w := newWorker(nc, &recordingSender{}, tb, nopErrLog(), wallClock{})
	for _, sev := range []severity{sevInfo, sevWarning, sevError, sevCritical} {
		n := firing()
		n.sev = sev
		w.offer(n, true)
	}
	refresh := firing()
	refresh.refresh = true
	w.offer(refresh, true) // keep-alives are for Alertmanager only
	res := resolved()
	w.offer(res, false) // send_resolved false
	assert.Len(t, w.queue, 2, "error and critical only")
}

func TestAlertmanagerRefreshWhileFiring(t *testing.T) {
	e, clk, _ := newTestEngine(t, testConfig(RuleConfig{Name: "r", Metric: "m", Window: 10 * time.Second, Op: OpGT, Threshold: 0}))
	e.refresh = 30 * time.Second
	var got []Notification
	for range 7 {
		e.consumeMetrics(gaugeMetrics("m", nil, 1))
		got = append(got, tick(e, clk)...)
	}
	require.Len(t, got, 3)
	assert.False(t, got[0].refresh)
	assert.True(t, got[1].refresh)
	assert.True(t, got[2].refresh)
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
	tt := componenttest.NewTelemetry()
	t.Cleanup(func() { _ = tt.Shutdown(context.Background()) })
	tb, err := metadata.NewTelemetryBuilder(tt.NewTelemetrySettings())
	require.NoError(t, err)
	bs := &blockingSender{started: make(chan struct{}, 1)}
	w := newWorker(NewNotifierConfig(notifierWebhook), bs, tb, nopErrLog(), wallClock{})
	w.start()
	for range 3 {
		w.offer(firing(), true)
	}
	<-bs.started
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	w.shutdown(ctx)
	assert.Equal(t, int64(1), counterValue(t, tt, "otelcol_alert_notifications_failed"), "the one in flight")
	assert.Equal(t, int64(2), counterValue(t, tt, "otelcol_alert_notification_queue_dropped"), "the two still queued")
}
