package foundationexporter

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
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/anvil/anvilcol/exporter/foundationexporter/internal/metadatatest"
)

// received is one request as the fake Foundation saw it.
type received struct {
	header  http.Header
	path    string
	gzipped bool
	records []map[string]any
}

// fakeFoundation is a Foundation intake on httptest: it decodes every
// request (gzip or not) and answers with what answer returns.
type fakeFoundation struct {
	*httptest.Server
	mu     sync.Mutex
	reqs   []received
	answer func(n int, r received) (int, http.Header, string)
}

func newFakeFoundation(t *testing.T) *fakeFoundation {
	f := &fakeFoundation{}
	f.Server = httptest.NewServer(f)
	t.Cleanup(f.Close)
	return f
}

func (f *fakeFoundation) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var body io.Reader = r.Body
	gz := r.Header.Get("Content-Encoding") == "gzip"
	if gz {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, "bad gzip: "+err.Error(), http.StatusBadRequest)
			return
		}
		body = zr
	}
	var payload struct {
		Metrics []map[string]any `json:"metrics"`
	}
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&payload); err != nil {
		http.Error(w, "bad JSON: "+err.Error(), http.StatusBadRequest)
		return
	}
	rec := received{header: r.Header.Clone(), path: r.URL.Path, gzipped: gz, records: payload.Metrics}
	f.mu.Lock()
	f.reqs = append(f.reqs, rec)
	n := len(f.reqs)
	answer := f.answer
	f.mu.Unlock()
	code, hdr, msg := http.StatusAccepted, http.Header(nil), `{"accepted":true}`
	if answer != nil {
		code, hdr, msg = answer(n, rec)
	}
	for k, v := range hdr {
		w.Header()[k] = v
	}
	w.WriteHeader(code)
	_, _ = io.WriteString(w, msg)
}

func (f *fakeFoundation) requests() []received {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]received(nil), f.reqs...)
}

// recordCount returns the number of records received in all requests.
func (f *fakeFoundation) recordCount() int {
	n := 0
	for _, r := range f.requests() {
		n += len(r.records)
	}
	return n
}

// testConfig is the default config pointed at url, with no sending queue (so
// ConsumeMetrics is synchronous and returns the export error) and fast retries.
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
	exporter.Metrics
	tel  *componenttest.Telemetry
	logs *observer.ObservedLogs
}

func startExporter(t *testing.T, cfg *Config, host component.Host) *testExporter {
	t.Helper()
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	set := metadatatest.NewSettings(tel)
	core, logs := observer.New(zapcore.DebugLevel)
	set.Logger = zap.New(core)
	exp, err := NewFactory().CreateMetrics(context.Background(), set, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if host == nil {
		host = componenttest.NewNopHost()
	}
	if err := exp.Start(context.Background(), host); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = exp.Shutdown(context.Background()) })
	return &testExporter{Metrics: exp, tel: tel, logs: logs}
}

// counter returns the value of an own-telemetry counter for one attribute
// value (attr "" = sum over all points).
func (e *testExporter) counter(t *testing.T, name, key, value string) int64 {
	t.Helper()
	m, err := e.tel.GetMetric(name)
	if err != nil {
		return 0
	}
	var n int64
	for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
		if key == "" {
			n += dp.Value
			continue
		}
		if v, ok := dp.Attributes.Value(attribute.Key(key)); ok && v.AsString() == value {
			n += dp.Value
		}
	}
	return n
}

// gauges returns md with n gauge points named name, attribute i = index.
func gauges(name string, n int) pmetric.Metrics { return gaugesFrom(name, 0, n) }

// gaugesFrom returns md with n gauge points valued from..from+n-1.
func gaugesFrom(name string, from, n int) pmetric.Metrics {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", "anvil")
	m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName(name)
	dps := m.SetEmptyGauge().DataPoints()
	for i := from; i < from+n; i++ {
		dp := dps.AppendEmpty()
		dp.SetIntValue(int64(i))
		dp.Attributes().PutInt("i", int64(i))
		dp.SetTimestamp(pcommon.Timestamp(1_700_000_000_000_000_000 + int64(i)*int64(time.Millisecond)))
	}
	return md
}
