package e2etest

import (
	"bytes"
	"net/http"
	"testing"

	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
)

// Post POSTs body to url as contentType and fails the test unless the
// request succeeds with a 2xx answer.
func Post(t testing.TB, url, contentType string, body []byte) {
	t.Helper()
	resp, err := http.Post(url, contentType, bytes.NewReader(body))
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("POST %s: HTTP %d", url, resp.StatusCode)
	}
}

// PostMetrics sends md, like an otlp_http exporter (protobuf), to the OTLP/HTTP
// receiver at baseURL (e.g. http://127.0.0.1:4318) and fails the test unless
// it is accepted.
func PostMetrics(t testing.TB, baseURL string, md pmetric.Metrics) {
	t.Helper()
	postProto(t, baseURL+"/v1/metrics", pmetricotlp.NewExportRequestFromMetrics(md))
}

// PostLogs is PostMetrics for logs.
func PostLogs(t testing.TB, baseURL string, ld plog.Logs) {
	t.Helper()
	postProto(t, baseURL+"/v1/logs", plogotlp.NewExportRequestFromLogs(ld))
}

// PostTraces is PostMetrics for traces.
func PostTraces(t testing.TB, baseURL string, td ptrace.Traces) {
	t.Helper()
	postProto(t, baseURL+"/v1/traces", ptraceotlp.NewExportRequestFromTraces(td))
}

func postProto(t testing.TB, url string, req interface{ MarshalProto() ([]byte, error) }) {
	t.Helper()
	body, err := req.MarshalProto()
	if err != nil {
		t.Fatalf("marshalling the OTLP request for %s: %v", url, err)
	}
	Post(t, url, "application/x-protobuf", body)
}
