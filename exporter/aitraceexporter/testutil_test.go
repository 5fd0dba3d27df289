package aitraceexporter

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/anvil/anvilcol/exporter/aitraceexporter/internal/metadatatest"
)

// request is one request as the fake AITrace saw it, body decoded.
type request struct {
	path    string
	header  http.Header
	gzipped bool
	body    map[string]any
}

// fakeAITrace is an AITrace on httptest. Artifacts are stored by
// Idempotency-Key like the real service: a repeated key answers 200 without
// creating a second artifact. Every request is recorded.
type fakeAITrace struct {
	*httptest.Server
	mu        sync.Mutex
	reqs      []request
	artifacts map[string]map[string]any // by Idempotency-Key
	posts     map[string]int            // artifact POSTs per Idempotency-Key
	answer    func(n int, r request) (int, http.Header, string)
}

func newFakeAITrace(t *testing.T) *fakeAITrace {
	f := &fakeAITrace{}
	f.Server = httptest.NewServer(f)
	t.Cleanup(f.Close)
	return f
}

func (f *fakeAITrace) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var rd io.Reader = r.Body
	gz := r.Header.Get("Content-Encoding") == "gzip"
	if gz {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		rd = zr
	}
	var body map[string]any
	if err := json.NewDecoder(rd).Decode(&body); err != nil || r.Header.Get("Content-Type") != "application/json" {
		http.Error(w, "bad JSON", http.StatusBadRequest)
		return
	}
	req := request{path: r.URL.Path, header: r.Header.Clone(), gzipped: gz, body: body}
	f.mu.Lock()
	f.reqs = append(f.reqs, req)
	n := len(f.reqs)
	answer := f.answer
	f.mu.Unlock()
	code, hdr, msg := http.StatusCreated, http.Header(nil), `{"id":"art-1"}`
	if answer != nil {
		code, hdr, msg = answer(n, req)
	}
	if code/100 == 2 && r.URL.Path == "/v1/artifacts" {
		key := r.Header.Get("Idempotency-Key")
		f.mu.Lock()
		if f.artifacts == nil {
			f.artifacts, f.posts = map[string]map[string]any{}, map[string]int{}
		}
		f.posts[key]++
		if _, exists := f.artifacts[key]; exists {
			code = http.StatusOK // idempotent replay
		} else {
			f.artifacts[key] = body
		}
		f.mu.Unlock()
	}
	for k, v := range hdr {
		w.Header()[k] = v
	}
	w.WriteHeader(code)
	_, _ = io.WriteString(w, msg)
}

func (f *fakeAITrace) requests(prefix string) []request {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []request
	for _, r := range f.reqs {
		if r.path == prefix {
			out = append(out, r)
		}
	}
	return out
}

func (f *fakeAITrace) stored() (map[string]map[string]any, map[string]int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	a, p := map[string]map[string]any{}, map[string]int{}
	for k, v := range f.artifacts {
		a[k] = v
	}
	for k, v := range f.posts {
		p[k] = v
	}
	return a, p
}

// testConfig is the default config pointed at url, with no sending queue (so
// Consume* is synchronous and returns the export error) and fast retries.
func testConfig(url string) *Config {
	cfg := createDefaultConfig().(*Config)
	cfg.ClientConfig.Endpoint = url
	cfg.QueueConfig = configoptional.None[exporterhelper.QueueBatchConfig]()
	cfg.RetryConfig.InitialInterval = 10 * time.Millisecond
	cfg.RetryConfig.MaxInterval = 50 * time.Millisecond
	cfg.RetryConfig.MaxElapsedTime = 10 * time.Second
	return cfg
}

type testExporter struct {
	exporter.Logs
	traces exporter.Traces
	tel    *componenttest.Telemetry
	logs   *observer.ObservedLogs
}

func startExporter(t *testing.T, cfg *Config, host component.Host) *testExporter {
	t.Helper()
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	set := metadatatest.NewSettings(tel)
	core, logs := observer.New(zapcore.DebugLevel)
	set.Logger = zap.New(core)
	if host == nil {
		host = componenttest.NewNopHost()
	}
	le, err := NewFactory().CreateLogs(context.Background(), set, cfg)
	if err != nil {
		t.Fatal(err)
	}
	te, err := NewFactory().CreateTraces(context.Background(), set, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []component.Component{le, te} {
		if err := c.Start(context.Background(), host); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Shutdown(context.Background()) })
	}
	return &testExporter{Logs: le, traces: te, tel: tel, logs: logs}
}

// counter sums an own-telemetry counter over the points whose attributes
// include all of kv (pairs of key, value).
func (e *testExporter) counter(t *testing.T, name string, kv ...string) int64 {
	t.Helper()
	m, err := e.tel.GetMetric(name)
	if err != nil {
		return 0
	}
	var n int64
next:
	for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
		for i := 0; i+1 < len(kv); i += 2 {
			if v, ok := dp.Attributes.Value(attribute.Key(kv[i])); !ok || v.AsString() != kv[i+1] {
				continue next
			}
		}
		n += dp.Value
	}
	return n
}
