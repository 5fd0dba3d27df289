//go:build e2e

package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/anvil/anvilcol/internal/e2etest"
)

// anvilE2EConfig: the anvil receiver feeding Prometheus (metrics) and an
// OTLP/HTTP sink (traces and logs).
func anvilE2EConfig(health, anvilPort, promPort, telemetry int, sinkURL string) string {
	return fmt.Sprintf(`
extensions:
  health_check:
    endpoint: 127.0.0.1:%d
receivers:
  anvil:
    endpoint: 127.0.0.1:%d
    metrics_flush_interval: 500ms
    resource:
      deployment.environment: e2e
exporters:
  prometheus:
    endpoint: 127.0.0.1:%d
  otlp_http:
    endpoint: %s
service:
  extensions: [health_check]
%s  pipelines:
    metrics:
      receivers: [anvil]
      exporters: [prometheus]
    traces:
      receivers: [anvil]
      exporters: [otlp_http]
    logs:
      receivers: [anvil]
      exporters: [otlp_http]
`, health, anvilPort, promPort, sinkURL, e2etest.TelemetryYAML(telemetry))
}

type anvilAnswer struct {
	Accepted int `json:"accepted"`
	Rejected int `json:"rejected"`
	Errors   []struct {
		Index int    `json:"index"`
		Error string `json:"error"`
	} `json:"errors"`
}

func anvilPost(t *testing.T, url, contentType string, body []byte) (int, anvilAnswer) {
	t.Helper()
	resp, err := http.Post(url, contentType, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var a anvilAnswer
	if err := json.Unmarshal(raw, &a); err != nil {
		t.Fatalf("answer is not the protocol's JSON: %v: %s", err, raw)
	}
	return resp.StatusCode, a
}

// family finds the metric family whose name starts with prefix (the
// Prometheus exporter appends unit and _total suffixes).
func family(fams map[string]*dto.MetricFamily, prefix string, typ dto.MetricType) *dto.MetricFamily {
	for name, f := range fams {
		if strings.HasPrefix(name, prefix) && f.GetType() == typ {
			return f
		}
	}
	return nil
}

func metricWith(f *dto.MetricFamily, labels map[string]string) *dto.Metric {
	if f == nil {
		return nil
	}
	for _, m := range f.GetMetric() {
		if e2etest.HasLabels(m, labels) {
			return m
		}
	}
	return nil
}

// cumulativeBuckets returns a histogram's cumulative counts by upper bound.
func cumulativeBuckets(m *dto.Metric) map[float64]uint64 {
	out := map[float64]uint64{}
	for _, b := range m.GetHistogram().GetBucket() {
		out[b.GetUpperBound()] = b.GetCumulativeCount()
	}
	return out
}

// TestAnvilReceiverEndToEnd posts the sample batch (config/examples) to the
// built binary and checks what a hand count of it gives: Prometheus counters
// and histogram buckets, spans with their parent/child links, event logs.
func TestAnvilReceiverEndToEnd(t *testing.T) {
	sink := e2etest.NewOTLPSink(t)
	health, anvilPort, promPort, telemetry := e2etest.FreePort(t), e2etest.FreePort(t), e2etest.FreePort(t), e2etest.FreePort(t)
	e2etest.Start(t, e2etest.Options{
		ConfigYAML: anvilE2EConfig(health, anvilPort, promPort, telemetry, sink.URL),
		HealthPort: health,
	})
	url := fmt.Sprintf("http://127.0.0.1:%d/v1/events", anvilPort)
	body, err := os.ReadFile(filepath.Join(e2etest.RepoRoot(t), "config", "examples", "anvil-events.json"))
	if err != nil {
		t.Fatal(err)
	}
	// The sample batch: every event accepted.
	var sample struct {
		Events []json.RawMessage `json:"events"`
	}
	if err := json.Unmarshal(body, &sample); err != nil {
		t.Fatal(err)
	}
	sampleEvents := len(sample.Events)
	code, a := anvilPost(t, url, "application/json", body)
	if code != http.StatusOK || a.Accepted != sampleEvents || a.Rejected != 0 {
		t.Fatalf("sample batch: HTTP %d %+v", code, a)
	}

	// A partly bad NDJSON batch: the good event is kept, the bad one named.
	code, a = anvilPost(t, url, "application/x-ndjson",
		[]byte(`{"name": "anvil.queue.status_changed", "metadata": {"queue_id": "q-3", "to": "active"}}`+"\n"+`{"name": "anvil..bad"}`+"\n"))
	if code != http.StatusOK || a.Accepted != 1 || a.Rejected != 1 || len(a.Errors) != 1 || a.Errors[0].Index != 1 {
		t.Fatalf("partial NDJSON batch: HTTP %d %+v", code, a)
	}
	if code, _ = anvilPost(t, url, "text/plain", body); code != http.StatusUnsupportedMediaType {
		t.Fatalf("text/plain: HTTP %d, want 415", code)
	}

	// Metrics: hand-counted from the sample.
	promURL := fmt.Sprintf("http://127.0.0.1:%d/metrics", promPort)
	var fams map[string]*dto.MetricFamily
	e2etest.Eventually(t, 30*time.Second, func() bool {
		fams, err = e2etest.Scrape(t, promURL)
		if err != nil {
			return false
		}
		m := metricWith(family(fams, "anvil_queue_created_count", dto.MetricType_COUNTER), nil)
		return m != nil && m.GetCounter().GetValue() == 2 &&
			family(fams, "anvil_assignment_dispatch_duration", dto.MetricType_HISTOGRAM) != nil
	}, "anvil_queue_created_count = 2 on %s", promURL)

	counters := []struct {
		prefix string
		labels map[string]string
		want   float64
	}{
		{"anvil_queue_created_count", map[string]string{"instance": "anvil@node-1"}, 2},
		{"anvil_label_submit_count", map[string]string{"queue_id": "q-1", "schema_version_id": "sv-3"}, 2},
		{"anvil_auth_login_failed_count", map[string]string{"provider": "github", "reason": "bad_password"}, 2},
		{"anvil_export_pii_detected_count", map[string]string{"pattern": "email"}, 2},
		{"anvil_export_pii_detected_count", map[string]string{"pattern": "phone"}, 1},
		{"anvil_agreement_low_score_count", map[string]string{"dimension": "bbox"}, 2},
		{"anvil_assignment_timed_out_count", map[string]string{"queue_id": "q-1"}, 5},
		{"anvil_assignment_dispatch_exception_count", map[string]string{"queue_id": "q-2"}, 1},
		{"anvil_agreement_batch_recompute_exception_count", map[string]string{"queue_id": "q-2"}, 1},
		{"anvil_policy_select_assignment_exception_count", map[string]string{"policy_type": "skill_match"}, 1},
		{"anvil_agreement_compute_exception_count", map[string]string{"metric": "fleiss_kappa"}, 1},
		{"anvil_export_generate_exception_count", map[string]string{"format": "csv"}, 1},
	}
	for _, c := range counters {
		m := metricWith(family(fams, c.prefix, dto.MetricType_COUNTER), c.labels)
		if m == nil {
			t.Errorf("%s%v: missing", c.prefix, c.labels)
			continue
		}
		if got := m.GetCounter().GetValue(); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.prefix, c.labels, got, c.want)
		}
	}

	hists := []struct {
		prefix  string
		labels  map[string]string
		count   uint64
		sum     float64
		buckets map[float64]uint64 // cumulative, as Prometheus shows them
	}{
		{"anvil_assignment_dispatch_duration", map[string]string{"policy_type": "round_robin"}, 1, 42,
			map[float64]uint64{10: 0, 50: 1, 100: 1, 250: 1, 500: 1, 1000: 1}},
		{"anvil_assignment_dispatch_duration", map[string]string{"policy_type": "priority"}, 1, 120,
			map[float64]uint64{10: 0, 50: 0, 100: 0, 250: 1, 500: 1, 1000: 1}},
		{"anvil_label_submit_duration", map[string]string{"queue_id": "q-1"}, 2, 330,
			map[float64]uint64{25: 0, 50: 1, 100: 1, 250: 1, 500: 2}},
		{"anvil_agreement_compute_duration", map[string]string{"metric": "cohen_kappa"}, 1, 75,
			map[float64]uint64{10: 0, 25: 0, 50: 0, 100: 1, 250: 1, 500: 1}},
		{"anvil_export_generate_duration", map[string]string{"format": "jsonl"}, 1, 12.5,
			map[float64]uint64{1: 0, 5: 0, 10: 0, 30: 1, 60: 1, 300: 1}},
	}
	for _, h := range hists {
		m := metricWith(family(fams, h.prefix, dto.MetricType_HISTOGRAM), h.labels)
		if m == nil {
			t.Errorf("%s%v: missing", h.prefix, h.labels)
			continue
		}
		if got := m.GetHistogram().GetSampleCount(); got != h.count {
			t.Errorf("%s%v count = %d, want %d", h.prefix, h.labels, got, h.count)
		}
		if got := m.GetHistogram().GetSampleSum(); got < h.sum-1e-9 || got > h.sum+1e-9 {
			t.Errorf("%s%v sum = %v, want %v", h.prefix, h.labels, got, h.sum)
		}
		got := cumulativeBuckets(m)
		for le, want := range h.buckets {
			if got[le] != want {
				t.Errorf("%s%v bucket le=%v = %d, want %d (all: %v)", h.prefix, h.labels, le, got[le], want, got)
			}
		}
	}
	if m := metricWith(family(fams, "anvil_export_progress_progress_pct", dto.MetricType_GAUGE), map[string]string{"export_id": "e-1"}); m == nil || m.GetGauge().GetValue() != 100 {
		t.Errorf("anvil_export_progress_progress_pct{export_id=e-1} = %v, want 100", m)
	}
	for name := range fams {
		if strings.Contains(name, "labeler_id") || strings.Contains(name, "sample_id") {
			t.Errorf("high-cardinality key in metric %s", name)
		}
	}

	// Spans: 15 stop/exception events; the agreement trace has one parent
	// (batch_recompute) and two compute children, one linked by explicit ids,
	// one by traceparent.
	e2etest.Eventually(t, 30*time.Second, func() bool { return sink.SpanCount() >= 15 }, "15 spans at the sink (got %d)", sink.SpanCount())
	if n := sink.SpanCount(); n != 15 {
		t.Errorf("spans = %d, want 15", n)
	}
	const agreementTrace, recompute, compute = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331", "53995c3f42cd8ad8"
	byName := map[string][]ptrace.Span{}
	for _, td := range sink.Traces() {
		for _, rs := range td.ResourceSpans().All() {
			if v, ok := rs.Resource().Attributes().Get("deployment.environment"); !ok || v.Str() != "dev" {
				t.Errorf("span resource: request resource must win over the config's: %v", rs.Resource().Attributes().AsRaw())
			}
			for _, ss := range rs.ScopeSpans().All() {
				for _, sp := range ss.Spans().All() {
					byName[sp.Name()] = append(byName[sp.Name()], sp)
				}
			}
		}
	}
	var parents []ptrace.Span
	for _, sp := range byName["anvil.agreement.batch_recompute"] {
		if sp.Status().Code() != ptrace.StatusCodeError { // the other one raised
			parents = append(parents, sp)
		}
	}
	if len(parents) != 1 || parents[0].SpanID().String() != recompute || parents[0].TraceID().String() != agreementTrace || !parents[0].ParentSpanID().IsEmpty() {
		t.Fatalf("batch_recompute span: %d spans, want one root %s in trace %s", len(parents), recompute, agreementTrace)
	}
	if d := time.Duration(parents[0].EndTimestamp() - parents[0].StartTimestamp()); d != 2*time.Second {
		t.Errorf("batch_recompute duration = %v, want 2s", d)
	}
	var children []ptrace.Span
	for _, c := range byName["anvil.agreement.compute"] {
		if c.Status().Code() == ptrace.StatusCodeError {
			if !c.ParentSpanID().IsEmpty() || c.TraceID().String() == agreementTrace {
				t.Errorf("compute exception without trace context must be a new root")
			}
			continue
		}
		children = append(children, c)
	}
	if len(children) != 2 {
		t.Fatalf("compute spans = %d, want 2 (+1 exception)", len(children))
	}
	sawExplicit := false
	for _, c := range children {
		if c.TraceID().String() != agreementTrace || c.ParentSpanID().String() != recompute {
			t.Errorf("compute span %s: trace %s parent %s, want trace %s parent %s", c.SpanID(), c.TraceID(), c.ParentSpanID(), agreementTrace, recompute)
		}
		if c.SpanID().String() == compute {
			sawExplicit = true
		}
	}
	if !sawExplicit {
		t.Errorf("no compute span with the explicit span_id %s", compute)
	}
	exc := byName["anvil.assignment.dispatch"]
	errs := 0
	for _, sp := range exc {
		if sp.Status().Code() == ptrace.StatusCodeError {
			errs++
			if sp.Status().Message() != "no labelers available" || sp.Events().Len() != 1 || sp.Events().At(0).Name() != "exception" {
				t.Errorf("dispatch exception span: status %q, %d events", sp.Status().Message(), sp.Events().Len())
			}
		}
	}
	if len(exc) != 3 || errs != 1 {
		t.Errorf("dispatch spans = %d (errors %d), want 3 (1)", len(exc), errs)
	}

	// Logs: every valid event, as OpenTelemetry event records.
	e2etest.Eventually(t, 30*time.Second, func() bool { return sink.LogRecordCount() >= 43 }, "43 log records (got %d)", sink.LogRecordCount())
	names := map[string]int{}
	for _, ld := range sink.Logs() {
		for _, rl := range ld.ResourceLogs().All() {
			for _, sl := range rl.ScopeLogs().All() {
				for _, lr := range sl.LogRecords().All() {
					names[lr.EventName()]++
				}
			}
		}
	}
	if names["anvil.queue.created"] != 2 || names["anvil.queue.status_changed"] != 2 || names["anvil.export.pii_detected"] != 3 || names[""] != 0 {
		t.Errorf("log event names: %v", names)
	}
}
