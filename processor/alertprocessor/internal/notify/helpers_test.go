package notify

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.uber.org/zap"

	"github.com/anvil/anvilcol/internal/clock"
	"github.com/anvil/anvilcol/internal/clock/clocktest"
	"github.com/anvil/anvilcol/internal/e2etest"
	"github.com/anvil/anvilcol/internal/ratelog"
	"github.com/anvil/anvilcol/processor/alertprocessor/internal/metadata"
)

// fakeClock is the controllable clock of the notifier tests (the one fake
// clock of anvilcol's tests).
type fakeClock = clocktest.Fake

func newFakeClock() *fakeClock {
	return clocktest.NewFake(time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC))
}

// runClock moves clk to each time something waits for until done holds
// (clocktest.Fake.RunUntil).
func runClock(t *testing.T, clk *fakeClock, done func() bool) { clk.RunUntil(t, done) }

// wallClock is the real time.
type wallClock = clock.Real

// counterValue sums an own-telemetry metric's points whose attributes include want.
func counterValue(t *testing.T, tt *componenttest.Telemetry, name string, want ...attribute.KeyValue) int64 {
	t.Helper()
	m, err := tt.GetMetric(name)
	if err != nil {
		return 0
	}
	var total int64
	if d, ok := m.Data.(metricdata.Sum[int64]); ok {
		for _, dp := range d.DataPoints {
			match := true
			for _, kv := range want {
				if v, found := dp.Attributes.Value(kv.Key); !found || v != kv.Value {
					match = false
				}
			}
			if match {
				total += dp.Value
			}
		}
	}
	return total
}

// testSettings are Settings on clk with the processor's counters recorded in tt.
func testSettings(t *testing.T, clk Clock, tt *componenttest.Telemetry) Settings {
	t.Helper()
	set := tt.NewTelemetrySettings()
	tb, err := metadata.NewTelemetryBuilder(set)
	require.NoError(t, err)
	return Settings{
		Telemetry: set,
		Counters: Counters{
			Sent: tb.AlertNotificationsSent, Failed: tb.AlertNotificationsFailed, Dropped: tb.AlertNotificationQueueDropped,
		},
		ErrLog:       ratelog.New(zap.NewNop(), time.Minute),
		Clock:        clk,
		SendResolved: true,
	}
}

func newTelemetry(t *testing.T) *componenttest.Telemetry {
	tt := componenttest.NewTelemetry()
	t.Cleanup(func() { _ = tt.Shutdown(context.Background()) })
	return tt
}

// buildTestNotifiers builds the notifiers of cfgs the way the processor
// does, on clk, with their own telemetry; they are not started.
func buildTestNotifiers(t *testing.T, clk Clock, cfgs ...Config) (*Notifiers, *componenttest.Telemetry) {
	t.Helper()
	for i := range cfgs {
		require.Empty(t, cfgs[i].Check("notifiers[0]"))
	}
	tt := newTelemetry(t)
	ns, err := New(context.Background(), componenttest.NewNopHost(), cfgs, testSettings(t, clk, tt))
	require.NoError(t, err)
	return ns, tt
}

// startWorker builds nc's worker on the wall clock and runs it.
func startWorker(t *testing.T, nc Config) (*worker, *componenttest.Telemetry) {
	return startWorkerOn(t, wallClock{}, nc)
}

// startWorkerOn is startWorker on clk.
func startWorkerOn(t *testing.T, clk Clock, nc Config) (*worker, *componenttest.Telemetry) {
	t.Helper()
	ns, tt := buildTestNotifiers(t, clk, nc)
	require.Len(t, ns.workers, 1)
	ns.Start()
	t.Cleanup(func() { ns.Shutdown(context.Background()) })
	return ns.workers[0], tt
}

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

func fastRetry(nc Config) Config {
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
	labels := map[string]string{"policy_type": "round_robin"}
	return Notification{
		Rule: "dispatch_latency_p99", Status: StatusFiring, Severity: SeverityCritical,
		Summary: "Assignment dispatch p99 612.5 ms > 500 ms (round_robin)", Value: 612.5, Threshold: 500, Op: ">", Stat: "p99",
		Labels:   labels,
		DedupKey: "anvilcol-dispatch_latency_p99-7b43e526fb28ce0d",
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
