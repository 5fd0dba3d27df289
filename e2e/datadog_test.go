//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/anvil/anvilcol/internal/e2etest"
)

// The datadog exporter delivers to an in-test intake on loopback: its metrics,
// traces and logs endpoints point at the intake, `hostname` is explicit and host
// metadata is off, so it never probes cloud metadata addresses.
func TestDatadogExporterDeliversToLoopbackIntake(t *testing.T) {
	intake := e2etest.NewIntake(t)
	intake.Respond(func(r e2etest.Request) (int, http.Header, []byte) {
		if strings.HasSuffix(r.Path, "/validate") {
			return 200, nil, []byte(`{"valid":true}`)
		}
		return 202, nil, []byte(`{}`)
	})
	health, otlpHTTP := e2etest.FreePort(t), e2etest.FreePort(t)
	cfg := fmt.Sprintf(`
extensions:
  health_check:
    endpoint: 127.0.0.1:%[1]d
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:%[2]d
exporters:
  datadog:
    api:
      key: 0123456789abcdef0123456789abcdef
      site: datadoghq.com
    hostname: anvilcol-e2e
    host_metadata:
      enabled: false
    metrics:
      endpoint: %[3]s
    traces:
      endpoint: %[3]s
      trace_buffer: 1
    logs:
      endpoint: %[3]s
      batch_wait: 1
service:
  extensions: [health_check]
%[4]s  pipelines:
    metrics:
      receivers: [otlp]
      exporters: [datadog]
    traces:
      receivers: [otlp]
      exporters: [datadog]
    logs:
      receivers: [otlp]
      exporters: [datadog]
`, health, otlpHTTP, intake.URL, e2etest.TelemetryYAML(e2etest.FreePort(t)))
	c := e2etest.Start(t, e2etest.Options{ConfigYAML: cfg, HealthPort: health})

	now := time.Now().UnixNano()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	base := fmt.Sprintf("http://127.0.0.1:%d", otlpHTTP)
	metrics := fmt.Sprintf(`{"resourceMetrics":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"anvil"}}]},
	  "scopeMetrics":[{"metrics":[{"name":"anvil.label.submit.count","sum":{"aggregationTemporality":1,"isMonotonic":true,
	  "dataPoints":[{"asInt":"5","startTimeUnixNano":"%d","timeUnixNano":"%d","attributes":[{"key":"queue_id","value":{"stringValue":"q-1"}}]}]}}]}]}]}`, now-int64(time.Second), now)
	traces := fmt.Sprintf(`{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"anvil"}}]},
	  "scopeSpans":[{"spans":[{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","name":"anvil.label.submit",
	  "kind":2,"startTimeUnixNano":"%d","endTimeUnixNano":"%d"}]}]}]}`, now-int64(time.Millisecond), now)
	logs := fmt.Sprintf(`{"resourceLogs":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"anvil"}}]},
	  "scopeLogs":[{"logRecords":[{"timeUnixNano":"%d","eventName":"anvil.auth.access_denied","severityNumber":9,
	  "body":{"stringValue":"access denied for labeler-e2e-marker"}}]}]}]}`, now)
	for path, body := range map[string]string{"/v1/metrics": metrics, "/v1/traces": traces, "/v1/logs": logs} {
		if code := postJSON(ctx, t, base+path, body); code != 200 {
			t.Fatalf("OTLP POST %s answered %d", path, code)
		}
	}

	has := func(prefix, needle string) bool {
		for _, r := range intake.RequestsTo(prefix) {
			if bytes.Contains(r.Body, []byte(needle)) {
				return true
			}
		}
		return false
	}
	e2etest.Eventually(t, 45*time.Second, func() bool {
		return has("/api/v2/series", "anvil.label.submit.count") &&
			has("/api/v0.2/traces", "anvil.label.submit") &&
			has("/api/v2/logs", "labeler-e2e-marker")
	}, "intake did not get metrics, traces and logs; paths seen: %v", paths(intake))

	for _, r := range intake.Requests() {
		if got := r.Header.Get("Dd-Api-Key"); got != "0123456789abcdef0123456789abcdef" && r.Path != "/api/v1/validate" {
			t.Errorf("%s %s carries DD-API-KEY %q", r.Method, r.Path, got)
		}
	}
	if testing.Verbose() {
		t.Logf("intake paths: %v", paths(intake))
	}
	if out := c.Output(); strings.Contains(out, "169.254.169.254") || strings.Contains(out, "metadata.google.internal") {
		t.Errorf("the datadog exporter tried a cloud metadata address:\n%s", out)
	}
}

func paths(in *e2etest.Intake) []string {
	seen := map[string]bool{}
	var out []string
	for _, r := range in.Requests() {
		if !seen[r.Path] {
			seen[r.Path] = true
			out = append(out, r.Path)
		}
	}
	return out
}
