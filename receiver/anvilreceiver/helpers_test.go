package anvilreceiver

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/anvil/anvilcol/internal/sharedcomponent"
	"github.com/anvil/anvilcol/receiver/anvilreceiver/internal/metadatatest"
)

// testReceiver is a started anvil receiver on a loopback port with sinks
// for all three signals.
type testReceiver struct {
	url     string
	r       *anvilReceiver
	logs    *consumertest.LogsSink
	metrics *consumertest.MetricsSink
	traces  *consumertest.TracesSink
	tel     *componenttest.Telemetry
}

type consumers struct {
	logs    consumer.Logs
	metrics consumer.Metrics
	traces  consumer.Traces
	host    component.Host
}

func startTestReceiver(t testing.TB, mutate func(*Config), cs ...consumers) *testReceiver {
	t.Helper()
	cfg := createDefaultConfig().(*Config)
	cfg.ServerConfig.NetAddr.Endpoint = "127.0.0.1:0"
	cfg.MetricsFlushInterval = time.Hour // tests flush by hand
	if mutate != nil {
		mutate(cfg)
	}
	require.NoError(t, cfg.Validate())
	tr := &testReceiver{
		logs: new(consumertest.LogsSink), metrics: new(consumertest.MetricsSink), traces: new(consumertest.TracesSink),
		tel: componenttest.NewTelemetry(),
	}
	t.Cleanup(func() { require.NoError(t, tr.tel.Shutdown(context.Background())) })
	var c consumers
	if len(cs) > 0 {
		c = cs[0]
	}
	if c.logs == nil {
		c.logs = tr.logs
	}
	if c.metrics == nil {
		c.metrics = tr.metrics
	}
	if c.traces == nil {
		c.traces = tr.traces
	}
	if c.host == nil {
		c.host = componenttest.NewNopHost()
	}
	set := metadatatest.NewSettings(tr.tel)
	f := NewFactory()
	ctx := context.Background()
	lr, err := f.CreateLogs(ctx, set, cfg, c.logs)
	require.NoError(t, err)
	mr, err := f.CreateMetrics(ctx, set, cfg, c.metrics)
	require.NoError(t, err)
	trr, err := f.CreateTraces(ctx, set, cfg, c.traces)
	require.NoError(t, err)
	for _, comp := range []component.Component{lr, mr, trr} {
		require.NoError(t, comp.Start(ctx, c.host))
	}
	t.Cleanup(func() {
		for _, comp := range []component.Component{lr, mr, trr} {
			require.NoError(t, comp.Shutdown(context.Background()))
		}
	})
	tr.r = unwrap(lr)
	require.Same(t, tr.r, unwrap(trr), "one receiver for all signals")
	tr.url = "http://" + tr.r.addr.String() + EventsPath
	return tr
}

// flush flushes the aggregated metrics and returns all metrics received.
func (tr *testReceiver) flush() []pmetric.Metrics {
	tr.r.flush(context.Background())
	return tr.metrics.AllMetrics()
}

type answer struct {
	code   int
	header http.Header
	resp   response
	raw    string
}

func post(t testing.TB, url, contentType string, body []byte, header ...http.Header) answer {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", contentType)
	for _, h := range header {
		for k, vs := range h {
			req.Header[k] = vs
		}
	}
	return do(t, req)
}

func do(t testing.TB, req *http.Request) answer {
	t.Helper()
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	a := answer{code: res.StatusCode, header: res.Header, raw: string(raw)}
	if res.Header.Get("Content-Type") == contentTypeJSON {
		require.NoError(t, json.Unmarshal(raw, &a.resp), string(raw))
	}
	return a
}

func postJSON(t testing.TB, url, body string) answer {
	t.Helper()
	return post(t, url, contentTypeJSON, []byte(body))
}

// unwrap returns the receiver behind what the factory created.
func unwrap(c component.Component) *anvilReceiver {
	return c.(*sharedcomponent.Component[*anvilReceiver]).Unwrap()
}
