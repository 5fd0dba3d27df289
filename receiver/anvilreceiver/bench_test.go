package anvilreceiver

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configgrpc"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/receiver/otlpreceiver"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/anvil/anvilcol/internal/event"
)

// benchBatchSize is the events per request in the ingest benchmarks.
const benchBatchSize = 500

// benchBatch returns a 500-event JSON batch: the sample batch's events
// cycled, each with its own time.
func benchBatch(b testing.TB) []byte {
	raw, err := os.ReadFile(filepath.Join("..", "..", "config", "examples", "anvil-events.json"))
	require.NoError(b, err)
	var doc struct {
		Resource map[string]any   `json:"resource"`
		Events   []map[string]any `json:"events"`
	}
	require.NoError(b, json.Unmarshal(raw, &doc))
	base := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	events := make([]map[string]any, benchBatchSize)
	for i := range events {
		ev := map[string]any{}
		for k, v := range doc.Events[i%len(doc.Events)] {
			ev[k] = v
		}
		delete(ev, "time_unix_nano")
		ev["time"] = base.Add(time.Duration(i) * time.Millisecond).Format(time.RFC3339Nano)
		events[i] = ev
	}
	body, err := json.Marshal(map[string]any{"resource": doc.Resource, "events": events})
	require.NoError(b, err)
	return body
}

func freeAddr(b *testing.B) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(b, err)
	defer l.Close()
	return l.Addr().String()
}

func benchPost(b *testing.B, client *http.Client, url, contentType string, body []byte) {
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	req.Header.Set("Content-Type", contentType)
	res, err := client.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		b.Fatalf("HTTP %d", res.StatusCode)
	}
}

func reportEvents(b *testing.B) {
	b.ReportMetric(float64(b.N*benchBatchSize)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(0, "ns/op")
}

// anvilTarget starts an anvil receiver feeding all three signals into nop
// consumers, with the same no-op telemetry settings as the stock peer, and
// returns it.
func anvilTarget(b *testing.B) *anvilReceiver {
	cfg := createDefaultConfig().(*Config)
	cfg.ServerConfig.NetAddr.Endpoint = "127.0.0.1:0"
	f := NewFactory()
	set := receivertest.NewNopSettings(f.Type())
	ctx := context.Background()
	lr, err := f.CreateLogs(ctx, set, cfg, consumertest.NewNop())
	require.NoError(b, err)
	mr, err := f.CreateMetrics(ctx, set, cfg, consumertest.NewNop())
	require.NoError(b, err)
	tr, err := f.CreateTraces(ctx, set, cfg, consumertest.NewNop())
	require.NoError(b, err)
	for _, c := range []component.Component{lr, mr, tr} {
		require.NoError(b, c.Start(ctx, componenttest.NewNopHost()))
		b.Cleanup(func() { require.NoError(b, c.Shutdown(context.Background())) })
	}
	return unwrap(lr)
}

func targetURL(r *anvilReceiver) string { return "http://" + r.addr.String() + EventsPath }

// anvilLogsOnlyTarget starts an anvil receiver used by a logs pipeline only
// (the like-for-like peer of the OTLP logs path) and returns its URL.
func anvilLogsOnlyTarget(b *testing.B) string {
	cfg := createDefaultConfig().(*Config)
	cfg.ServerConfig.NetAddr.Endpoint = "127.0.0.1:0"
	f := NewFactory()
	r, err := f.CreateLogs(context.Background(), receivertest.NewNopSettings(f.Type()), cfg, consumertest.NewNop())
	require.NoError(b, err)
	require.NoError(b, r.Start(context.Background(), componenttest.NewNopHost()))
	b.Cleanup(func() { require.NoError(b, r.Shutdown(context.Background())) })
	return "http://" + unwrap(r).addr.String() + EventsPath
}

// otlpTarget starts the stock OTLP receiver (HTTP only, logs into a nop
// consumer) and returns its logs URL and the batch as the OTLP/HTTP protobuf
// log records the anvil receiver makes of the same events.
func otlpTarget(b *testing.B, body []byte) (string, []byte) {
	d := newDecoder(benchBatchSize)
	var bt batch
	require.NoError(b, d.decodeJSON(body, &bt))
	require.Len(b, bt.events, benchBatchSize)
	tc := make([]ids, len(bt.events))
	for i := range bt.events {
		_, lc := event.Split(bt.events[i].name)
		tc[i] = traceContext(&bt.events[i], lc)
	}
	ld := buildLogs(&bt, tc, bt.resource, func(pcommon.InstrumentationScope) {}, pcommon.NewTimestampFromTime(time.Now()))
	pb, err := plogotlp.NewExportRequestFromLogs(ld).MarshalProto()
	require.NoError(b, err)

	f := otlpreceiver.NewFactory()
	cfg := f.CreateDefaultConfig().(*otlpreceiver.Config)
	cfg.Protocols.GRPC = configoptional.None[configgrpc.ServerConfig]()
	addr := freeAddr(b)
	cfg.Protocols.HTTP.GetOrInsertDefault().ServerConfig.NetAddr.Endpoint = addr
	r, err := f.CreateLogs(context.Background(), receivertest.NewNopSettings(f.Type()), cfg, consumertest.NewNop())
	require.NoError(b, err)
	require.NoError(b, r.Start(context.Background(), componenttest.NewNopHost()))
	b.Cleanup(func() { require.NoError(b, r.Shutdown(context.Background())) })
	return fmt.Sprintf("http://%s/v1/logs", addr), pb
}

const contentTypeProtobuf = "application/x-protobuf"

// BenchmarkIngest measures, in one run, the anvil receiver taking 500-event
// JSON batches into all three signals and the stock OTLP receiver taking the
// same information as OTLP/HTTP protobuf log records (logs only).
func BenchmarkIngest(b *testing.B) {
	body := benchBatch(b)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}

	b.Run("anvil_json_logs+traces+metrics", func(b *testing.B) {
		url := targetURL(anvilTarget(b))
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			benchPost(b, client, url, contentTypeJSON, body)
		}
		reportEvents(b)
	})

	b.Run("otlp_http_protobuf_logs", func(b *testing.B) {
		url, pb := otlpTarget(b, body)
		b.SetBytes(int64(len(pb)))
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			benchPost(b, client, url, contentTypeProtobuf, pb)
		}
		reportEvents(b)
	})
}

// BenchmarkIngestRatio alternates the two paths request by request, so that
// a shared, noisy machine slows both alike, and reports each path's events/s
// and their ratio (anvil / otlp; > 1 means the anvil receiver is faster).
func BenchmarkIngestRatio(b *testing.B) {
	body := benchBatch(b)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	anvilURL := targetURL(anvilTarget(b))
	logsOnlyURL := anvilLogsOnlyTarget(b)
	otlpURL, pb := otlpTarget(b, body)
	var anvil, logsOnly, otlp time.Duration
	b.ResetTimer()
	for b.Loop() {
		t0 := time.Now()
		benchPost(b, client, anvilURL, contentTypeJSON, body)
		t1 := time.Now()
		benchPost(b, client, otlpURL, contentTypeProtobuf, pb)
		t2 := time.Now()
		benchPost(b, client, logsOnlyURL, contentTypeJSON, body)
		logsOnly += time.Since(t2)
		otlp += t2.Sub(t1)
		anvil += t1.Sub(t0)
	}
	events := float64(b.N * benchBatchSize)
	b.ReportMetric(events/anvil.Seconds(), "anvil_3signals_events/s")
	b.ReportMetric(events/logsOnly.Seconds(), "anvil_logs_events/s")
	b.ReportMetric(events/otlp.Seconds(), "otlp_logs_events/s")
	b.ReportMetric(otlp.Seconds()/anvil.Seconds(), "ratio_3signals")
	b.ReportMetric(otlp.Seconds()/logsOnly.Seconds(), "ratio_logs")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkDecode measures the decoder alone on a 500-event batch.
func BenchmarkDecode(b *testing.B) {
	body := benchBatch(b)
	d := newDecoder(benchBatchSize)
	var bt batch
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		bt.reset()
		if err := d.decodeJSON(body, &bt); err != nil {
			b.Fatal(err)
		}
	}
	reportEvents(b)
}

// BenchmarkConvertRatio measures the same two paths as BenchmarkIngestRatio
// without the HTTP round trip (identical on both sides), alternated request
// by request: the anvil receiver's decoding of a 500-event JSON body and its
// hand-off to all three signals, against the OTLP/HTTP protobuf decoding of
// the same log records and their hand-off to the logs consumer.
func BenchmarkConvertRatio(b *testing.B) {
	body := benchBatch(b)
	_, pb := otlpTarget(b, body)
	r := anvilTarget(b)
	nop := consumertest.NewNop()
	ctx := context.Background()
	var anvil, otlp time.Duration
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		t0 := time.Now()
		sc := r.scratch.get()
		if err := sc.dec.decodeJSON(body, &sc.batch); err != nil {
			b.Fatal(err)
		}
		if _, err := r.consume(ctx, sc); err != nil {
			b.Fatal(err)
		}
		sc.batch.reset()
		sc.stage.reset()
		clear(sc.ids)
		r.scratch.put(sc)
		t1 := time.Now()
		req := plogotlp.NewExportRequest()
		if err := req.UnmarshalProto(pb); err != nil {
			b.Fatal(err)
		}
		if err := nop.ConsumeLogs(ctx, req.Logs()); err != nil {
			b.Fatal(err)
		}
		otlp += time.Since(t1)
		anvil += t1.Sub(t0)
	}
	events := float64(b.N * benchBatchSize)
	b.ReportMetric(events/anvil.Seconds(), "anvil_3signals_events/s")
	b.ReportMetric(events/otlp.Seconds(), "otlp_logs_events/s")
	b.ReportMetric(otlp.Seconds()/anvil.Seconds(), "ratio_3signals")
	b.ReportMetric(0, "ns/op")
}
