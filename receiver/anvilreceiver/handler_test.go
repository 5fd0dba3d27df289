package anvilreceiver

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/open-telemetry/opentelemetry-collector-contrib/extension/bearertokenauthextension"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configauth"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/extension/extensiontest"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/anvil/anvilcol/receiver/anvilreceiver/internal/metadatatest"
)

const goodEvent = `{"name": "anvil.queue.created", "measurements": {}, "metadata": {"queue_id": "q-1"}}`

func TestPartialBatchKeepsGoodEventsAndNamesTheBadOnes(t *testing.T) {
	tr := startTestReceiver(t, nil)
	long := strings.Repeat("é", 3000)                                 // 6000 bytes: truncated, not rejected
	deep := `{"a":{"b":{"c":{"d":{"e":{"f":{"g":{"h":{"i":1}}}}}}}}}` // 9 levels with metadata
	keys := make([]string, 129)
	for i := range keys {
		keys[i] = fmt.Sprintf(`"k%d": %d`, i, i)
	}
	body := `[` + strings.Join([]string{
		goodEvent,                                                            // 0
		`{"name": ["anvil", "", "created"]}`,                                 // 1 empty segment
		`{"name": ["anvil", 7]}`,                                             // 2 non-string segment
		`{"name": "anvil.x", "measurements": {"d": "1"}}`,                    // 3 non-numeric
		`{"name": "anvil.x", "measurements": {"d": 1e999}}`,                  // 4 non-finite
		`{"name": "anvil.x", "time": "yesterday"}`,                           // 5 bad time
		`{"name": "anvil.x", "metadata": ` + deep + `}`,                      // 6 too deep
		`{"name": "anvil.x", "metadata": {` + strings.Join(keys, ",") + `}}`, // 7 too many keys
		`{"name": "anvil.x", "metadata": {"long": "` + long + `"}}`,          // 8 truncated, kept
		`"anvil.x"`,            // 9 not an object
		`{"measurements": {}}`, // 10 no name
		`{"name": "anvil.x", "time_unit": "fortnight"}`, // 11 bad unit
		`{"name": "anvil..x"}`,                          // 12 empty segment
	}, ",") + `]`
	a := postJSON(t, tr.url, body)
	require.Equal(t, http.StatusOK, a.code, a.raw)
	assert.Equal(t, 2, a.resp.Accepted)
	assert.Equal(t, 11, a.resp.Rejected)
	got := map[int]string{}
	for _, e := range a.resp.Errors {
		got[e.Index] = e.Error
	}
	want := map[int]string{
		1: "name segment 1 is empty", 2: "name segment 1 must be a string", 3: "measurements.d must be a number",
		4: "measurements.d is not a finite number", 5: `time "yesterday" is not RFC 3339`,
		6: "metadata is nested deeper than 8 levels", 7: "metadata has more than 128 keys",
		9: "event must be a JSON object", 10: "name is required", 11: `time_unit: unknown time unit "fortnight"`,
		12: `name "anvil..x" has an empty segment`,
	}
	require.Len(t, got, len(want))
	for i, msg := range want {
		assert.Contains(t, got[i], msg, "event %d", i)
	}

	logs := onlyLogs(t, tr)
	require.Equal(t, 2, logs.Len())
	v, _ := logs.At(1).Attributes().Get("long")
	assert.Len(t, v.Str(), 4096, "truncated to 4096 bytes at a character boundary")
	assert.True(t, strings.HasPrefix(long, v.Str()))

	reason := func(r string, n int64) metricdata.DataPoint[int64] {
		return metricdata.DataPoint[int64]{Attributes: attribute.NewSet(attribute.String("reason", r)), Value: n}
	}
	metadatatest.AssertEqualReceiverAnvilEventsRejected(t, tr.tel, []metricdata.DataPoint[int64]{
		reason("name", 4), reason("measurements", 2), reason("time", 1), reason("metadata", 2),
		reason("not_object", 1), reason("time_unit", 1),
	}, metricdatatest.IgnoreTimestamp(), metricdatatest.IgnoreExemplars())
	metadatatest.AssertEqualReceiverAnvilValuesTruncated(t, tr.tel, []metricdata.DataPoint[int64]{{Value: 1}},
		metricdatatest.IgnoreTimestamp(), metricdatatest.IgnoreExemplars())
}

func TestNDJSONBodyOneEventPerLine(t *testing.T) {
	tr := startTestReceiver(t, nil)
	body := goodEvent + "\n\n" + `{"name": "anvil.queue.created", "metadata": {` + "\n" + goodEvent + "\r\n" + `{"name": 1}`
	a := post(t, tr.url, "application/x-ndjson; charset=utf-8", []byte(body))
	require.Equal(t, http.StatusOK, a.code, a.raw)
	assert.Equal(t, 2, a.resp.Accepted)
	assert.Equal(t, 2, a.resp.Rejected)
	require.Len(t, a.resp.Errors, 2)
	assert.Equal(t, 1, a.resp.Errors[0].Index)
	assert.Contains(t, a.resp.Errors[0].Error, "invalid JSON at byte")
	assert.Equal(t, 3, a.resp.Errors[1].Index)
	assert.Contains(t, a.resp.Errors[1].Error, "name must be a string or an array of strings")
	assert.Equal(t, 2, onlyLogs(t, tr).Len())
}

func TestGzipBody(t *testing.T) {
	tr := startTestReceiver(t, nil)
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, _ = zw.Write([]byte(`[` + goodEvent + `,` + goodEvent + `]`))
	require.NoError(t, zw.Close())
	a := post(t, tr.url, contentTypeJSON, buf.Bytes(), http.Header{"Content-Encoding": {"gzip"}})
	require.Equal(t, http.StatusOK, a.code, a.raw)
	assert.Equal(t, 2, a.resp.Accepted)
	assert.Equal(t, 2, onlyLogs(t, tr).Len())
}

func TestEveryStatusCode(t *testing.T) {
	tr := startTestReceiver(t, func(c *Config) {
		c.MaxEventsPerRequest = 3
		c.ServerConfig.MaxRequestBodySize = 2048
	})
	get, err := http.NewRequest(http.MethodGet, tr.url, nil)
	require.NoError(t, err)
	a := do(t, get)
	assert.Equal(t, http.StatusMethodNotAllowed, a.code)
	assert.Equal(t, "POST", a.header.Get("Allow"))
	assert.Contains(t, a.resp.Error, "GET is not allowed")

	for _, tc := range []struct {
		name, contentType, body string
		code                    int
		msg                     string
	}{
		{"ok", contentTypeJSON, `[` + goodEvent + `]`, 200, ""},
		{"syntax", contentTypeJSON, `[{"name": "anvil.x"`, 400, "invalid JSON at byte 19: unexpected end of input"},
		{"trailing", contentTypeJSON, `[] x`, 400, "unexpected data after the JSON value"},
		{"not an envelope", contentTypeJSON, `"events"`, 400, "body must be a JSON object"},
		{"events not an array", contentTypeJSON, `{"events": {}}`, 400, `"events" must be an array`},
		{"no events", contentTypeJSON, `{"events": []}`, 400, "the body holds no events"},
		{"no valid event", contentTypeJSON, `[{"name": ""}]`, 400, "no valid event: 1 rejected"},
		{"too many events", contentTypeJSON, `[` + strings.Repeat(goodEvent+",", 3) + goodEvent + `]`, 413, "more than max_events_per_request (3)"},
		{"too many ndjson", contentTypeNDJSON, strings.Repeat(goodEvent+"\n", 4), 413, "more than max_events_per_request (3)"},
		{"body too large", contentTypeJSON, `[{"name": "anvil.x", "metadata": {"s": "` + strings.Repeat("x", 3000) + `"}}]`, 413, "max_request_body_size (2048 bytes)"},
		{"content type", "text/plain", goodEvent, 415, `unsupported Content-Type "text/plain"`},
		{"protobuf", "application/x-protobuf", goodEvent, 415, "want application/json or application/x-ndjson"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := post(t, tr.url, tc.contentType, []byte(tc.body))
			assert.Equal(t, tc.code, a.code, a.raw)
			assert.Equal(t, contentTypeJSON, a.header.Get("Content-Type"))
			assert.Contains(t, a.resp.Error, tc.msg)
		})
	}
	if a := post(t, strings.TrimSuffix(tr.url, EventsPath)+"/v1/logs", contentTypeJSON, []byte(`[]`)); a.code != http.StatusNotFound {
		t.Errorf("unknown path: got %d", a.code)
	}
}

func TestRefusalByNextConsumerIsRetryable(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		code int
	}{
		{"memory_limiter", errors.New("data refused due to high memory usage"), http.StatusTooManyRequests},
		{"resource exhausted", status.Error(codes.ResourceExhausted, "queue full"), http.StatusTooManyRequests},
		{"other transient", errors.New("sending queue is full"), http.StatusServiceUnavailable},
		{"permanent", consumererror.NewPermanent(errors.New("bad data")), http.StatusInternalServerError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			logs := consumertest.NewErr(tc.err)
			tr := startTestReceiver(t, nil, consumers{logs: logs})
			a := postJSON(t, tr.url, `[`+goodEvent+`,`+goodEvent+`]`)
			assert.Equal(t, tc.code, a.code, a.raw)
			if tc.code == http.StatusInternalServerError {
				assert.Empty(t, a.header.Get("Retry-After"))
			} else {
				assert.Equal(t, "1", a.header.Get("Retry-After"))
			}
			assert.Equal(t, 0, a.resp.Accepted)
			assert.Equal(t, 2, a.resp.Rejected)
			assert.Contains(t, a.resp.Error, tc.err.Error())
			// Refused events are not aggregated: the client's retry must not count twice.
			assert.Empty(t, tr.flush())
		})
	}
}

func TestObsreportCountsAcceptedAndRefused(t *testing.T) {
	tr := startTestReceiver(t, nil)
	require.Equal(t, 200, postJSON(t, tr.url, `[`+goodEvent+`, {"name": "anvil.x.stop", "measurements": {"duration": 5}}]`).code)
	tr.flush()
	attrs := attribute.NewSet(attribute.String("receiver", "anvil"), attribute.String("transport", "http"))
	for name, want := range map[string]int64{
		"otelcol_receiver_accepted_log_records":   2,
		"otelcol_receiver_accepted_spans":         1,
		"otelcol_receiver_accepted_metric_points": 1,
	} {
		m, err := tr.tel.GetMetric(name)
		require.NoError(t, err, name)
		sum := m.Data.(metricdata.Sum[int64])
		require.Len(t, sum.DataPoints, 1, name)
		assert.Equal(t, want, sum.DataPoints[0].Value, name)
		assert.True(t, sum.DataPoints[0].Attributes.Equals(&attrs), "%s: %v", name, sum.DataPoints[0].Attributes)
	}
}

func TestBearerTokenAuth(t *testing.T) {
	authID := component.MustNewID("bearertokenauth")
	f := bearertokenauthextension.NewFactory()
	acfg := f.CreateDefaultConfig().(*bearertokenauthextension.Config)
	acfg.BearerToken = configopaque.String("s3cret")
	ext, err := f.Create(context.Background(), extensiontest.NewNopSettings(f.Type()), acfg)
	require.NoError(t, err)
	host := &extHost{exts: map[component.ID]component.Component{authID: ext}}
	require.NoError(t, ext.Start(context.Background(), host))
	t.Cleanup(func() { _ = ext.Shutdown(context.Background()) })

	tr := startTestReceiver(t, func(c *Config) {
		c.ServerConfig.Auth = configoptional.Some(confighttp.AuthConfig{Config: configauth.Config{AuthenticatorID: authID}})
	}, consumers{host: host})

	a := postJSON(t, tr.url, `[`+goodEvent+`]`)
	assert.Equal(t, http.StatusUnauthorized, a.code, a.raw)
	assert.NotEmpty(t, a.resp.Error)
	a = post(t, tr.url, contentTypeJSON, []byte(`[`+goodEvent+`]`), http.Header{"Authorization": {"Bearer wrong"}})
	assert.Equal(t, http.StatusUnauthorized, a.code, a.raw)
	assert.Empty(t, tr.logs.AllLogs())
	a = post(t, tr.url, contentTypeJSON, []byte(`[`+goodEvent+`]`), http.Header{"Authorization": {"Bearer s3cret"}})
	assert.Equal(t, http.StatusOK, a.code, a.raw)
	assert.Equal(t, 1, a.resp.Accepted)
}

type extHost struct {
	exts map[component.ID]component.Component
}

func (h *extHost) GetExtensions() map[component.ID]component.Component { return h.exts }

func TestConcurrentClients(t *testing.T) {
	tr := startTestReceiver(t, nil)
	const clients, requests = 8, 25
	body := []byte(`[` + goodEvent + `,{"name": "anvil.label.submit.stop", "measurements": {"duration": 30000000},
		"metadata": {"queue_id": "q-1", "schema_version_id": "sv-1"}}]`)
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			for range requests {
				a := post(t, tr.url, contentTypeJSON, body)
				assert.Equal(t, 200, a.code)
			}
		})
	}
	// Flush concurrently with ingest.
	wg.Go(func() {
		for range 5 {
			tr.r.flush(context.Background())
		}
	})
	wg.Wait()
	assert.Equal(t, clients*requests*2, tr.logs.LogRecordCount())
	assert.Equal(t, clients*requests, tr.traces.SpanCount())
	tr.flush()
	// Cumulative: the last flush holds the totals.
	all := tr.metrics.AllMetrics()
	last := all[len(all)-1]
	got := map[string]int64{}
	ms := last.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics()
	for i := range ms.Len() {
		m := ms.At(i)
		switch m.Name() {
		case "anvil.queue.created.count", "anvil.label.submit.count":
			got[m.Name()] = m.Sum().DataPoints().At(0).IntValue()
		case "anvil.label.submit.duration":
			got[m.Name()] = int64(m.Histogram().DataPoints().At(0).Count())
		}
	}
	assert.Equal(t, map[string]int64{"anvil.queue.created.count": clients * requests,
		"anvil.label.submit.count": clients * requests, "anvil.label.submit.duration": clients * requests}, got)
}
