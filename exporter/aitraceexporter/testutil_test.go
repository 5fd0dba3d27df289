package aitraceexporter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"sync"
	"testing"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/exporter"

	"github.com/anvil/anvilcol/exporter/aitraceexporter/internal/metadata"
	"github.com/anvil/anvilcol/internal/componenttesthelp"
	"github.com/anvil/anvilcol/internal/e2etest"
)

// request is one request as the fake AITrace saw it: the recorded request
// and its JSON body.
type request struct {
	e2etest.Request
	gzipped bool
	body    map[string]any
}

// decodeAITrace decodes a request the way AITrace does: a JSON object sent
// as application/json.
func decodeAITrace(r e2etest.Request) (request, error) {
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		return request{}, fmt.Errorf("Content-Type %q, want application/json", ct)
	}
	var body map[string]any
	if err := json.Unmarshal(r.Body, &body); err != nil {
		return request{}, err
	}
	return request{Request: r, gzipped: r.Header.Get("Content-Encoding") == "gzip", body: body}, nil
}

// fakeAITrace is an AITrace on an e2etest.Intake. A request that is not a
// JSON object is answered 400; any other gets what the function given to
// answer returns (default 201 {"id":"art-1"}). Artifacts are stored by
// Idempotency-Key like the real service: a repeated key answers 200 without
// creating a second artifact.
type fakeAITrace struct {
	*e2etest.Intake
	mu        sync.Mutex
	artifacts map[string]map[string]any // by Idempotency-Key
	posts     map[string]int            // accepted artifact POSTs per Idempotency-Key
}

func newFakeAITrace(t *testing.T) *fakeAITrace {
	return aitraceOn(e2etest.NewIntake(t))
}

// aitraceOn makes in answer like AITrace.
func aitraceOn(in *e2etest.Intake) *fakeAITrace {
	f := &fakeAITrace{Intake: in, artifacts: map[string]map[string]any{}, posts: map[string]int{}}
	f.answer(func(request) (int, http.Header, string) {
		return http.StatusCreated, nil, `{"id":"art-1"}`
	})
	return f
}

// answer sets how the fake answers a well-formed request (r.Seq is 1 for the
// first request the fake received). A 2xx answer to an artifact POST stores
// the artifact, or turns into 200 if its Idempotency-Key is already stored.
func (f *fakeAITrace) answer(fn func(r request) (int, http.Header, string)) {
	e2etest.RespondDecoded(f.Intake, decodeAITrace, func(req request) (int, http.Header, []byte) {
		code, hdr, msg := fn(req)
		if code/100 == 2 && req.Path == "/v1/artifacts" {
			key := req.Header.Get("Idempotency-Key")
			f.mu.Lock()
			f.posts[key]++
			if _, exists := f.artifacts[key]; exists {
				code = http.StatusOK // idempotent replay
			} else {
				f.artifacts[key] = req.body
			}
			f.mu.Unlock()
		}
		return code, hdr, []byte(msg)
	})
}

// requests returns the well-formed requests to path (/v1/artifacts or
// /v1/traces) received so far (the others were answered 400).
func (f *fakeAITrace) requests(path string) []request {
	return e2etest.DecodeAll(f.RequestsTo(path), decodeAITrace)
}

func (f *fakeAITrace) stored() (map[string]map[string]any, map[string]int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return maps.Clone(f.artifacts), maps.Clone(f.posts)
}

// testConfig is the default config pointed at url, with no sending queue (so
// Consume* is synchronous and returns the export error) and fast retries.
func testConfig(url string) *Config {
	cfg := createDefaultConfig().(*Config)
	componenttesthelp.SyncFastRetry(&cfg.Config, url)
	return cfg
}

// testExporter is a started logs (artifacts) and traces exporter pair with
// their own telemetry and log.
type testExporter struct {
	exporter.Logs
	traces exporter.Traces
	tel    *componenttesthelp.Telemetry
}

// newExporter creates and starts the logs and traces exporters on host (nil
// = nop host); the test shuts them down.
func newExporter(t *testing.T, cfg *Config, host component.Host) *testExporter {
	t.Helper()
	tel, f := componenttesthelp.NewTelemetry(t), NewFactory()
	le := componenttesthelp.NewExporter(t, tel, metadata.Type, f.CreateLogs, cfg, host)
	te := componenttesthelp.NewExporter(t, tel, metadata.Type, f.CreateTraces, cfg, host)
	return &testExporter{Logs: le, traces: te, tel: tel}
}

// startExporter is newExporter, shut down at the end of the test.
func startExporter(t *testing.T, cfg *Config, host component.Host) *testExporter {
	t.Helper()
	e := newExporter(t, cfg, host)
	t.Cleanup(func() { _ = e.shutdown() })
	return e
}

// shutdown shuts both exporters down.
func (e *testExporter) shutdown() error {
	return errors.Join(e.Shutdown(context.Background()), e.traces.Shutdown(context.Background()))
}
