package foundationexporter

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/anvil/anvilcol/exporter/foundationexporter/internal/metadata"
	"github.com/anvil/anvilcol/internal/componenttesthelp"
	"github.com/anvil/anvilcol/internal/e2etest"
)

// received is one request as the fake Foundation saw it: the recorded
// request and the records of its JSON body.
type received struct {
	e2etest.Request
	gzipped bool
	records []map[string]any
}

// decodeFoundation decodes a request body the way Foundation does: a JSON
// object {"metrics": [...]} with no other field.
func decodeFoundation(r e2etest.Request) (received, error) {
	var payload struct {
		Metrics []map[string]any `json:"metrics"`
	}
	dec := json.NewDecoder(bytes.NewReader(r.Body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&payload); err != nil {
		return received{}, err
	}
	return received{Request: r, gzipped: r.Header.Get("Content-Encoding") == "gzip", records: payload.Metrics}, nil
}

// fakeFoundation is a Foundation intake on an e2etest.Intake: a body that is
// not Foundation's JSON is answered 400; any other request gets what the
// function given to answer returns (default 202 {"accepted":true}).
type fakeFoundation struct {
	*e2etest.Intake
}

func newFakeFoundation(t *testing.T) *fakeFoundation {
	return foundationOn(e2etest.NewIntake(t))
}

// foundationOn makes in answer like Foundation.
func foundationOn(in *e2etest.Intake) *fakeFoundation {
	f := &fakeFoundation{Intake: in}
	f.answer(func(received) (int, http.Header, string) {
		return http.StatusAccepted, nil, `{"accepted":true}`
	})
	return f
}

// answer sets how the fake answers a well-formed request (r.Seq is 1 for the
// first request the fake received).
func (f *fakeFoundation) answer(fn func(r received) (int, http.Header, string)) {
	e2etest.RespondDecoded(f.Intake, decodeFoundation, func(r received) (int, http.Header, []byte) {
		code, hdr, msg := fn(r)
		return code, hdr, []byte(msg)
	})
}

// requests returns the well-formed requests received so far (the others were
// answered 400).
func (f *fakeFoundation) requests() []received {
	return e2etest.DecodeAll(f.Requests(), decodeFoundation)
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
	componenttesthelp.SyncFastRetry(&cfg.Config, url)
	return cfg
}

// testExporter is a started metrics exporter with its own telemetry and log.
type testExporter struct {
	exporter.Metrics
	tel *componenttesthelp.Telemetry
}

// newExporter creates and starts a metrics exporter on host (nil = nop host);
// the test shuts it down.
func newExporter(t *testing.T, cfg *Config, host component.Host) *testExporter {
	t.Helper()
	tel := componenttesthelp.NewTelemetry(t)
	exp := componenttesthelp.NewExporter(t, tel, metadata.Type, NewFactory().CreateMetrics, cfg, host)
	return &testExporter{Metrics: exp, tel: tel}
}

// startExporter is newExporter, shut down at the end of the test.
func startExporter(t *testing.T, cfg *Config, host component.Host) *testExporter {
	t.Helper()
	e := newExporter(t, cfg, host)
	t.Cleanup(func() { _ = e.Shutdown(context.Background()) })
	return e
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
