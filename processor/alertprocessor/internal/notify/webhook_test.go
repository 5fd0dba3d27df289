package notify

import (
	"context"
	"encoding/json"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

func TestWebhookPayloadAndHeaders(t *testing.T) {
	in := newIntake(t, status(200))
	nc := NewConfig(TypeWebhook)
	nc.Endpoint = in.URL + "/hooks/anvil"
	nc.Headers = configopaque.MapList{{Name: "Authorization", Value: "Bearer s3cret"}, {Name: "X-Team", Value: "labeling"}}
	w, _ := startWorker(t, nc)
	w.offer(firing())
	w.offer(resolved())
	hs := waitHits(t, in, 2)
	assert.Equal(t, "/hooks/anvil", hs[0].Path)
	assert.Equal(t, "Bearer s3cret", hs[0].Header.Get("Authorization"))
	assert.Equal(t, "labeling", hs[0].Header.Get("X-Team"))
	assert.Equal(t, map[string]any{
		"version": "1", "status": "firing", "repeat": false, "rule": "dispatch_latency_p99", "severity": "critical",
		"summary": "Assignment dispatch p99 612.5 ms > 500 ms (round_robin)", "value": 612.5, "threshold": 500.0,
		"op": ">", "stat": "p99", "labels": map[string]any{"policy_type": "round_robin"},
		"dedup_key": firing().DedupKey, "starts_at": "2026-03-01T10:00:00Z", "timestamp": "2026-03-01T10:00:00Z",
	}, decode(t, hs[0].Body))
	r := decode(t, hs[1].Body)
	assert.Equal(t, "resolved", r["status"])
	assert.Equal(t, "2026-03-01T10:01:30Z", r["ends_at"])
	assert.Equal(t, 120.0, r["value"])
}

func TestWebhookPayloadIsDocumentedJSON(t *testing.T) {
	// The README's example payload decodes into the type the notifier sends.
	var p webhookPayload
	require.NoError(t, json.Unmarshal([]byte(`{"version":"1","status":"firing","repeat":false,"rule":"low_agreement",
	"severity":"critical","summary":"s","value":0.31,"threshold":0.4,"op":"<","stat":"each",
	"labels":{"dimension":"label"},"dedup_key":"k","starts_at":"2026-03-01T10:00:00Z","timestamp":"2026-03-01T10:00:00Z"}`), &p))
	assert.Equal(t, jsonFloat(0.31), p.Value)
}

func TestNoValueIsNull(t *testing.T) {
	n := firing()
	n.Value = math.NaN()
	b, err := json.Marshal(newWebhookPayload(n))
	require.NoError(t, err)
	assert.Nil(t, decode(t, b)["value"])
	assert.Contains(t, decode(t, b), "value")
}

func TestLogNotifier(t *testing.T) {
	core, logs := observer.New(zap.InfoLevel)
	s := &logSender{logger: zap.New(core)}
	require.NoError(t, s.send(context.Background(), firing()))
	require.Equal(t, 1, logs.Len())
	e := logs.All()[0]
	assert.Equal(t, "alert firing", e.Message)
	f := e.ContextMap()
	assert.Equal(t, "dispatch_latency_p99", f["rule"])
	assert.Equal(t, "critical", f["severity"])
	assert.Equal(t, 612.5, f["value"])
	assert.Equal(t, 500.0, f["threshold"])
	assert.Equal(t, firing().DedupKey, f["dedup_key"])
}
