package e2etest

// OTLP over HTTP, both ends: a sink that keeps what an otlp_http exporter
// sends, and posts as an otlp_http exporter sends them.

import (
	"net/http"
	"strings"
	"sync"
	"testing"

	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
)

// OTLPSink is an OTLP/HTTP endpoint (protobuf or JSON) that keeps what it gets.
// Point an `otlp_http` exporter's endpoint at URL.
type OTLPSink struct {
	*Intake
	mu      sync.Mutex
	traces  []ptrace.Traces
	metrics []pmetric.Metrics
	logs    []plog.Logs
}

// NewOTLPSink starts an OTLP/HTTP sink on loopback.
func NewOTLPSink(t testing.TB) *OTLPSink {
	t.Helper()
	s := &OTLPSink{Intake: NewIntake(t)}
	s.Respond(s.decode)
	return s
}

func (s *OTLPSink) decode(r Request) (int, http.Header, []byte) {
	isJSON := strings.HasPrefix(r.Header.Get("Content-Type"), "application/json")
	unmarshal := func(m interface {
		UnmarshalProto([]byte) error
		UnmarshalJSON([]byte) error
	}) error {
		if isJSON {
			return m.UnmarshalJSON(r.Body)
		}
		return m.UnmarshalProto(r.Body)
	}
	hdr := http.Header{"Content-Type": {"application/x-protobuf"}}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch r.Path {
	case "/v1/traces":
		req := ptraceotlp.NewExportRequest()
		if err := unmarshal(&req); err != nil {
			return http.StatusBadRequest, nil, []byte(err.Error())
		}
		s.traces = append(s.traces, req.Traces())
		b, _ := ptraceotlp.NewExportResponse().MarshalProto()
		return http.StatusOK, hdr, b
	case "/v1/metrics":
		req := pmetricotlp.NewExportRequest()
		if err := unmarshal(&req); err != nil {
			return http.StatusBadRequest, nil, []byte(err.Error())
		}
		s.metrics = append(s.metrics, req.Metrics())
		b, _ := pmetricotlp.NewExportResponse().MarshalProto()
		return http.StatusOK, hdr, b
	case "/v1/logs":
		req := plogotlp.NewExportRequest()
		if err := unmarshal(&req); err != nil {
			return http.StatusBadRequest, nil, []byte(err.Error())
		}
		s.logs = append(s.logs, req.Logs())
		b, _ := plogotlp.NewExportResponse().MarshalProto()
		return http.StatusOK, hdr, b
	}
	return http.StatusNotFound, nil, []byte("unknown path " + r.Path)
}

// Traces returns the trace batches received so far.
func (s *OTLPSink) Traces() []ptrace.Traces {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]ptrace.Traces(nil), s.traces...)
}

// Metrics returns the metric batches received so far.
func (s *OTLPSink) Metrics() []pmetric.Metrics {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]pmetric.Metrics(nil), s.metrics...)
}

// Logs returns the log batches received so far.
func (s *OTLPSink) Logs() []plog.Logs {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]plog.Logs(nil), s.logs...)
}

// SpanCount counts spans received so far.
func (s *OTLPSink) SpanCount() int {
	n := 0
	for _, td := range s.Traces() {
		n += td.SpanCount()
	}
	return n
}

// LogRecordCount counts log records received so far.
func (s *OTLPSink) LogRecordCount() int {
	n := 0
	for _, ld := range s.Logs() {
		n += ld.LogRecordCount()
	}
	return n
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
