package aitraceexporter

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/config/configauth"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/consumer/consumererror"

	"github.com/anvil/anvilcol/internal/componenttesthelp"
	"github.com/anvil/anvilcol/internal/durabletest"
	"github.com/anvil/anvilcol/internal/e2etest"
)

func TestRetryableStatusesAreRetriedHonouringRetryAfter(t *testing.T) {
	for _, code := range []int{408, 429, 500, 502, 503, 504} {
		t.Run(strconv.Itoa(code), func(t *testing.T) {
			t.Parallel()
			f := newFakeAITrace(t)
			var first, second time.Time
			f.answer(func(r request) (int, http.Header, string) {
				if r.Seq == 1 {
					first = time.Now()
					return code, http.Header{"Retry-After": {"1"}}, "busy"
				}
				second = time.Now()
				return http.StatusCreated, nil, "{}"
			})
			exp := startExporter(t, testConfig(f.URL), nil)
			if err := exp.ConsumeLogs(context.Background(), logs(exportEvent("anvil.export.completed", "e1", "q1"))); err != nil {
				t.Fatalf("%d: %v", code, err)
			}
			arts, posts := f.stored()
			if len(arts) != 1 || posts["e1"] != 1 || len(f.requests("/v1/artifacts")) != 2 {
				t.Fatalf("%d: stored %v posts %v", code, arts, posts)
			}
			if d := second.Sub(first); d < 900*time.Millisecond {
				t.Errorf("%d: retried after %v, want >= Retry-After 1s", code, d)
			}
			if n := exp.tel.Counter(t, "otelcol_aitrace_requests", "api", "artifacts", "outcome", "retryable"); n != 1 {
				t.Errorf("%d: requests{artifacts,retryable} = %d", code, n)
			}
		})
	}
}

func TestRetryResendsOnlyArtifactsNotRegistered(t *testing.T) {
	f := newFakeAITrace(t)
	f.answer(func(r request) (int, http.Header, string) {
		if r.Seq == 2 {
			return http.StatusBadGateway, nil, "bad gateway"
		}
		return http.StatusCreated, nil, "{}"
	})
	exp := startExporter(t, testConfig(f.URL), nil)
	if err := exp.ConsumeLogs(context.Background(), logs(
		exportEvent("anvil.export.completed", "e1", "q"),
		exportEvent("anvil.export.completed", "e2", "q"),
		exportEvent("anvil.export.completed", "e3", "q"),
	)); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, r := range f.requests("/v1/artifacts") {
		keys = append(keys, r.Header.Get("Idempotency-Key"))
	}
	if strings.Join(keys, ",") != "e1,e2,e2,e3" {
		t.Errorf("artifact POSTs %v, want e1,e2(502),e2,e3", keys)
	}
}

func TestTracesRetryResendsOnlyUnacknowledgedSpans(t *testing.T) {
	f := newFakeAITrace(t)
	f.answer(func(r request) (int, http.Header, string) {
		if r.Seq == 2 {
			return http.StatusServiceUnavailable, nil, "later"
		}
		return http.StatusOK, nil, "{}"
	})
	cfg := testConfig(f.URL)
	cfg.MaxBatchSpans = 4
	exp := startExporter(t, cfg, nil)
	if err := exp.traces.ConsumeTraces(context.Background(), interleaved(4)); err != nil { // 16 spans
		t.Fatal(err)
	}
	reqs := f.requests("/v1/traces")
	if len(reqs) != 5 {
		t.Fatalf("%d requests, want 5 (4 + one retry)", len(reqs))
	}
	_, spans := spansByTrace(append(reqs[:1:1], reqs[2:]...))
	if len(spans[tid(0xa).String()]) != 8 || len(spans[tid(0xb).String()]) != 8 {
		t.Errorf("delivered %v", spans)
	}
}

func TestOther4xxArePermanentCountedAndLoggedOnce(t *testing.T) {
	f := newFakeAITrace(t)
	long := `{"error":"queue unknown"}` + strings.Repeat("#", 900)
	f.answer(func(request) (int, http.Header, string) { return http.StatusUnprocessableEntity, nil, long })
	exp := startExporter(t, testConfig(f.URL), nil)
	for _, id := range []string{"e1", "e2", "e3"} {
		err := exp.ConsumeLogs(context.Background(), logs(exportEvent("anvil.export.completed", id, "q")))
		if !consumererror.IsPermanent(err) {
			t.Fatalf("err = %v, want permanent", err)
		}
	}
	err := exp.traces.ConsumeTraces(context.Background(), interleaved(1))
	if !consumererror.IsPermanent(err) {
		t.Fatalf("traces err = %v, want permanent", err)
	}
	if n := len(f.requests("/v1/artifacts")); n != 3 {
		t.Errorf("%d artifact requests: permanent failures must not be retried", n)
	}
	if n := exp.tel.Counter(t, "otelcol_aitrace_log_records_dropped", "reason", "rejected"); n != 3 {
		t.Errorf("log_records_dropped{rejected} = %d", n)
	}
	if n := exp.tel.Counter(t, "otelcol_aitrace_spans_dropped", "reason", "rejected"); n != 4 {
		t.Errorf("spans_dropped{rejected} = %d", n)
	}
	logged := exp.tel.Logs.FilterMessageSnippet("refused an artifact permanently").All()
	if len(logged) != 1 {
		t.Fatalf("artifact rejection logged %d times, want once", len(logged))
	}
	if b := logged[0].ContextMap()["response_body"].(string); len(b) != 512 || !strings.HasPrefix(b, `{"error":"queue unknown"}`) {
		t.Errorf("logged body (%d bytes) %.30q", len(b), b)
	}
}

func TestSingleArtifactTooLargeIsRejected(t *testing.T) {
	f := newFakeAITrace(t)
	f.answer(func(request) (int, http.Header, string) { return http.StatusRequestEntityTooLarge, nil, "no" })
	exp := startExporter(t, testConfig(f.URL), nil)
	err := exp.ConsumeLogs(context.Background(), logs(exportEvent("anvil.export.completed", "e1", "q")))
	if !consumererror.IsPermanent(err) || len(f.requests("/v1/artifacts")) != 1 {
		t.Fatalf("err %v, %d requests: one artifact cannot be split", err, len(f.requests("/v1/artifacts")))
	}
}

func TestNetworkErrorsAreRetried(t *testing.T) {
	addr := durabletest.ReserveAddr(t)
	exp := startExporter(t, testConfig("http://"+addr), nil)
	in := new(e2etest.Intake)
	f := aitraceOn(in)
	durabletest.UpWhen(t, addr, in, func() bool {
		return exp.tel.Counter(t, "otelcol_aitrace_requests", "outcome", "network_error") >= 1
	})
	if err := exp.ConsumeLogs(context.Background(), logs(exportEvent("anvil.export.completed", "e1", "q"))); err != nil {
		t.Fatal(err)
	}
	if arts, _ := f.stored(); len(arts) != 1 {
		t.Errorf("artifacts %v", arts)
	}
	if n := exp.tel.Counter(t, "otelcol_aitrace_requests", "outcome", "network_error"); n < 1 {
		t.Errorf("requests{network_error} = %d", n)
	}
}

func TestAuthViaHeadersAndNoCompression(t *testing.T) {
	f := newFakeAITrace(t)
	cfg := testConfig(f.URL)
	cfg.ClientConfig.Headers = configopaque.MapList{{Name: "Authorization", Value: "Token abc"}}
	cfg.ClientConfig.Compression = ""
	exp := startExporter(t, cfg, nil)
	if err := exp.traces.ConsumeTraces(context.Background(), interleaved(1)); err != nil {
		t.Fatal(err)
	}
	r := f.requests("/v1/traces")[0]
	if r.Header.Get("Authorization") != "Token abc" || r.gzipped {
		t.Errorf("Authorization %q gzipped %v", r.Header.Get("Authorization"), r.gzipped)
	}
}

func TestAuthViaBearerTokenExtension(t *testing.T) {
	f := newFakeAITrace(t)
	f.answer(func(r request) (int, http.Header, string) {
		if r.Header.Get("Authorization") != "Bearer tok-1" {
			return http.StatusUnauthorized, nil, "no"
		}
		return http.StatusCreated, nil, "{}"
	})
	host := componenttesthelp.StartBearerTokenAuth(t, "tok-1")
	cfg := testConfig(f.URL)
	cfg.ClientConfig.Auth = configoptional.Some(configauth.Config{AuthenticatorID: componenttesthelp.BearerTokenAuthID})
	exp := startExporter(t, cfg, host)
	if err := exp.ConsumeLogs(context.Background(), logs(exportEvent("anvil.export.completed", "e1", "q"))); err != nil {
		t.Fatal(err)
	}
	if err := exp.traces.ConsumeTraces(context.Background(), interleaved(1)); err != nil {
		t.Fatal(err)
	}
}
