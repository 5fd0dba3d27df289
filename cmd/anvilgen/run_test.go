package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/anvil/anvilcol/receiver/anvilreceiver"
)

func testConfig(t *testing.T, args ...string) *Config {
	t.Helper()
	cfg, err := parseFlags(append([]string{"-quiet"}, args...), io.Discard)
	require.NoError(t, err)
	return cfg
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

// The real anvil receiver, in process, feeding sinks.
type inProcessReceiver struct {
	url     string
	logs    *consumertest.LogsSink
	traces  *consumertest.TracesSink
	metrics *consumertest.MetricsSink
	stop    func()
}

func startAnvilReceiver(t *testing.T) *inProcessReceiver {
	t.Helper()
	f := anvilreceiver.NewFactory()
	cfg := f.CreateDefaultConfig().(*anvilreceiver.Config)
	addr := freeAddr(t)
	cfg.ServerConfig.NetAddr.Endpoint = addr
	cfg.MetricsFlushInterval = time.Hour // one flush, at shutdown
	r := &inProcessReceiver{url: "http://" + addr, logs: new(consumertest.LogsSink),
		traces: new(consumertest.TracesSink), metrics: new(consumertest.MetricsSink)}
	set := receivertest.NewNopSettings(f.Type())
	ctx := context.Background()
	lr, err := f.CreateLogs(ctx, set, cfg, r.logs)
	require.NoError(t, err)
	tr, err := f.CreateTraces(ctx, set, cfg, r.traces)
	require.NoError(t, err)
	mr, err := f.CreateMetrics(ctx, set, cfg, r.metrics)
	require.NoError(t, err)
	comps := []component.Component{lr, tr, mr}
	for _, c := range comps {
		require.NoError(t, c.Start(ctx, componenttest.NewNopHost()))
	}
	var once sync.Once
	r.stop = func() {
		once.Do(func() {
			for _, c := range comps {
				require.NoError(t, c.Shutdown(context.Background()))
			}
		})
	}
	t.Cleanup(r.stop)
	return r
}

// What anvilgen sends through the anvil receiver carries exactly the metrics
// its statsd mode sends as DogStatsD lines for the same events, node by node,
// plus an event log per event and a span per stop/exception.
func TestAnvilPathAndStatsdPathCarryTheSameMetrics(t *testing.T) {
	rcv := startAnvilReceiver(t)
	const nodes, batch, perNode = 2, 250, 10000
	cfg := testConfig(t, "-endpoint", rcv.url, "-rate", "0", "-count", fmt.Sprint(nodes*perNode),
		"-nodes", fmt.Sprint(nodes), "-batch", fmt.Sprint(batch), "-workers", "1", "-seed", "5")
	r, err := Run(context.Background(), cfg, nil)
	require.NoError(t, err)
	assert.EqualValues(t, nodes*perNode, r.Sent)
	assert.EqualValues(t, nodes*perNode, r.Accepted)
	assert.Zero(t, r.Rejected+r.Failed+r.Retried)
	assert.EqualValues(t, nodes*perNode/batch, r.Requests)
	rcv.stop() // flushes the metrics

	// One worker, nodes in turn: node i's events are its generator's first perNode.
	wantNames := map[string]bool{}
	wantSubmits := map[string]int64{}
	var spans, events int
	for i := 0; i < nodes; i++ {
		id := fmt.Sprintf("anvil@node-%d", i+1)
		evs := newGenerator(cfg.Seed+uint64(i)*7919, cfg.weights).next(nil, perNode, time.Now())
		for j := range evs {
			events++
			if strings.HasSuffix(evs[j].Name, ".stop") || strings.HasSuffix(evs[j].Name, ".exception") {
				spans++
			}
			if evs[j].Name == "anvil.label.submit.stop" {
				wantSubmits[id]++
			}
			lines, _ := appendStatsdLines(nil, &evs[j])
			for _, l := range strings.Split(strings.TrimSuffix(string(lines), "\n"), "\n") {
				if name, _, ok := strings.Cut(l, ":"); ok {
					wantNames[name] = true
				}
			}
		}
	}
	assert.EqualValues(t, sum(wantSubmits), r.AcceptedByName["anvil.label.submit.stop"], "accepted by name")
	assert.Equal(t, events, rcv.logs.LogRecordCount())
	assert.Equal(t, spans, rcv.traces.SpanCount())

	gotNames := map[string]bool{}
	gotSubmits := map[string]int64{}
	for _, md := range rcv.metrics.AllMetrics() {
		for i := 0; i < md.ResourceMetrics().Len(); i++ {
			rm := md.ResourceMetrics().At(i)
			id, _ := rm.Resource().Attributes().Get("service.instance.id")
			for j := 0; j < rm.ScopeMetrics().Len(); j++ {
				ms := rm.ScopeMetrics().At(j).Metrics()
				for k := 0; k < ms.Len(); k++ {
					m := ms.At(k)
					gotNames[m.Name()] = true
					if m.Name() == "anvil.label.submit.count" && m.Type() == pmetric.MetricTypeSum {
						for p := 0; p < m.Sum().DataPoints().Len(); p++ {
							gotSubmits[id.Str()] += m.Sum().DataPoints().At(p).IntValue()
						}
					}
				}
			}
		}
	}
	assert.Equal(t, wantNames, gotNames, "the same metric names on both paths")
	assert.Len(t, gotNames, len(adr008), "the mix exercises every catalog metric")
	assert.Equal(t, wantSubmits, gotSubmits, "label submits counted per node")
}

func sum(m map[string]int64) int64 {
	var s int64
	for _, v := range m {
		s += v
	}
	return s
}

// fakeSleep records waits and moves a fake clock instead of sleeping.
type fakeSleep struct {
	mu    sync.Mutex
	t     time.Time
	waits []time.Duration
}

func (f *fakeSleep) sleep(_ context.Context, d time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.waits = append(f.waits, d)
	f.t = f.t.Add(d)
	return nil
}

func (f *fakeSleep) now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.t
}

func anvilSenderWithFakeSleep(t *testing.T, cfg *Config) (*anvilSender, *fakeSleep) {
	t.Helper()
	s, err := newAnvilSender(cfg)
	require.NoError(t, err)
	fs := &fakeSleep{t: time.Unix(1777636800, 0)}
	s.p.sleep, s.p.now = fs.sleep, fs.now
	return s, fs
}

func TestRetriesHonourRetryAfterAndCountEventsOnce(t *testing.T) {
	var calls int
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls++
		n := calls
		mu.Unlock()
		switch n {
		case 1:
			w.Header().Set("Retry-After", "3")
			w.WriteHeader(http.StatusServiceUnavailable)
		case 2:
			w.WriteHeader(http.StatusTooManyRequests) // no Retry-After: 1s
		default:
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, `{"accepted":9,"rejected":1,"errors":[{"index":0,"error":"bad"}]}`)
		}
	}))
	defer srv.Close()
	cfg := testConfig(t, "-endpoint", srv.URL, "-rate", "0", "-count", "10", "-batch", "10", "-workers", "1", "-weights", "auth=1")
	s, fs := anvilSenderWithFakeSleep(t, cfg)
	r, err := run(context.Background(), cfg, s, nil, time.Now)
	require.NoError(t, err)
	assert.Equal(t, []time.Duration{3 * time.Second, time.Second}, fs.waits)
	assert.EqualValues(t, 10, r.Sent)
	assert.EqualValues(t, 9, r.Accepted)
	assert.EqualValues(t, 1, r.Rejected)
	assert.EqualValues(t, 2, r.Retried)
	assert.EqualValues(t, 3, r.Requests)
	assert.Zero(t, r.Failed)
	var byName int64
	for _, n := range r.AcceptedByName {
		byName += n
	}
	assert.EqualValues(t, 9, byName, "the rejected event is not counted by name")
}

func TestGivesUpAfterRetryFor(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Retry-After", "2")
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	cfg := testConfig(t, "-endpoint", srv.URL, "-rate", "0", "-count", "5", "-batch", "5", "-retry-for", "7s")
	s, fs := anvilSenderWithFakeSleep(t, cfg)
	r, err := run(context.Background(), cfg, s, nil, time.Now)
	require.NoError(t, err)
	assert.EqualValues(t, 5, r.Failed)
	assert.EqualValues(t, 3, r.Retried, "attempts at 0s, 2s, 4s, 6s; the next would pass 7s")
	assert.Len(t, fs.waits, 3)
}

func TestPermanentErrorsAreNotRetried(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusRequestEntityTooLarge)
	}))
	defer srv.Close()
	cfg := testConfig(t, "-endpoint", srv.URL, "-rate", "0", "-count", "5", "-batch", "5")
	s, fs := anvilSenderWithFakeSleep(t, cfg)
	r, err := run(context.Background(), cfg, s, nil, time.Now)
	require.NoError(t, err)
	assert.EqualValues(t, 5, r.Failed)
	assert.Zero(t, r.Retried)
	assert.Empty(t, fs.waits)
}

func TestRetryAfterHeader(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	assert.Equal(t, time.Second, retryAfter("", now))
	assert.Equal(t, 5*time.Second, retryAfter("5", now))
	assert.Equal(t, time.Second, retryAfter("soon", now))
	assert.Equal(t, 30*time.Second, retryAfter(now.Add(30*time.Second).Format(http.TimeFormat), now))
	assert.Equal(t, time.Minute, retryAfter("3600", now), "capped")
}

func TestGzipAndNDJSONBodies(t *testing.T) {
	rcv := startAnvilReceiver(t)
	cfg := testConfig(t, "-endpoint", rcv.url, "-rate", "0", "-count", "600", "-batch", "200", "-format", "ndjson", "-gzip")
	r, err := Run(context.Background(), cfg, nil)
	require.NoError(t, err)
	assert.EqualValues(t, 600, r.Accepted)
	assert.Equal(t, 600, rcv.logs.LogRecordCount())
}

func TestOTLPModeSendsEventLogRecords(t *testing.T) {
	var mu sync.Mutex
	var got []plogotlp.ExportRequest
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		assert.Equal(t, "/v1/logs", r.URL.Path)
		assert.Equal(t, "application/x-protobuf", r.Header.Get("Content-Type"))
		assert.Equal(t, "Bearer s3cret", r.Header.Get("Authorization"))
		body, _ := io.ReadAll(r.Body)
		req := plogotlp.NewExportRequest()
		require.NoError(t, req.UnmarshalProto(body))
		mu.Lock()
		got = append(got, req)
		mu.Unlock()
		resp := plogotlp.NewExportResponse()
		if len(got) == 1 {
			resp.PartialSuccess().SetRejectedLogRecords(2)
		}
		b, _ := resp.MarshalProto()
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(b)
	}))
	defer srv.Close()
	cfg := testConfig(t, "-mode", "otlp", "-endpoint", srv.URL, "-rate", "0", "-count", "300", "-batch", "100",
		"-workers", "1", "-token", "s3cret", "-weights", "label=1")
	r, err := Run(context.Background(), cfg, nil)
	require.NoError(t, err)
	assert.EqualValues(t, 298, r.Accepted)
	assert.EqualValues(t, 2, r.Rejected)
	require.Len(t, got, 3)
	rl := got[0].Logs().ResourceLogs().At(0)
	id, _ := rl.Resource().Attributes().Get("service.instance.id")
	assert.Equal(t, "anvil@node-1", id.Str())
	lr := rl.ScopeLogs().At(0).LogRecords().At(0)
	assert.True(t, strings.HasPrefix(lr.EventName(), "anvil.label.submit."), lr.EventName())
	assert.False(t, lr.TraceID().IsEmpty(), "trace context from traceparent")
	_, ok := lr.Attributes().Get("queue_id")
	assert.True(t, ok)
}

func TestStatsdModeSendsEachEventsLinesInDatagrams(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	defer pc.Close()
	cfg := testConfig(t, "-mode", "statsd", "-endpoint", pc.LocalAddr().String(), "-rate", "0", "-count", "200", "-mtu", "100")
	r, err := Run(context.Background(), cfg, nil)
	require.NoError(t, err)
	require.Positive(t, r.Requests)
	buf := make([]byte, 65536)
	var lines int64
	for i := int64(0); i < r.Requests; i++ {
		require.NoError(t, pc.SetReadDeadline(time.Now().Add(5*time.Second)))
		n, _, err := pc.ReadFrom(buf)
		require.NoError(t, err, "datagram %d of %d", i, r.Requests)
		p := buf[:n]
		if bytes.Count(p, []byte("\n")) > 0 {
			assert.LessOrEqual(t, n, 100, "packed datagrams stay within the MTU")
		}
		lines += int64(bytes.Count(p, []byte("\n")) + 1)
		for _, l := range strings.Split(string(p), "\n") {
			assert.Regexp(t, `^anvil\.[a-z_.]+:[-0-9.e+]+\|(c|d|g|h)(\|#.*)?$`, l)
		}
	}
	assert.Equal(t, r.Lines, lines)
	assert.EqualValues(t, 200, r.Accepted)
}

func TestRateIsHeld(t *testing.T) {
	rcv := startAnvilReceiver(t)
	cfg := testConfig(t, "-endpoint", rcv.url, "-rate", "4000", "-duration", "1s", "-batch", "100")
	start := time.Now()
	r, err := Run(context.Background(), cfg, nil)
	require.NoError(t, err)
	assert.InEpsilon(t, 4000, r.Sent, 0.05, "events in 1s at 4000/s")
	assert.InEpsilon(t, 4000, r.AchievedRate, 0.1)
	assert.GreaterOrEqual(t, time.Since(start), 950*time.Millisecond)
}

func TestMainValidatesFlagsAndPrintsJSON(t *testing.T) {
	for args, want := range map[string]string{
		"-mode carrier-pigeon":              "-mode must be anvil, statsd or otlp",
		"-duration 0":                       "-duration or -count must be > 0",
		"-batch 20000":                      "-batch must be within [1, 10000]",
		"-mode statsd -endpoint http://x:1": "-endpoint for statsd is host:port",
		"-endpoint localhost:4320":          "must be an http(s) URL",
		"-weights label=1,nonsense=2":       `unknown scenario "nonsense"`,
		"-format xml":                       "-format must be json or ndjson",
		"-nodes 0":                          "-nodes must be >= 1",
		"-duration 1s stray":                `unexpected argument "stray"`,
	} {
		var out, errOut bytes.Buffer
		code := mainErr(strings.Fields(args), &out, &errOut)
		assert.Equal(t, 2, code, args)
		assert.Contains(t, errOut.String(), want, args)
	}

	rcv := startAnvilReceiver(t)
	var out bytes.Buffer
	code := mainErr([]string{"-quiet", "-json", "-endpoint", rcv.url, "-rate", "0", "-count", "100", "-batch", "50"}, &out, io.Discard)
	require.Equal(t, 0, code)
	var r Report
	require.NoError(t, json.Unmarshal(out.Bytes(), &r))
	assert.EqualValues(t, 100, r.Accepted)
	assert.Equal(t, "anvil", r.Mode)
}
