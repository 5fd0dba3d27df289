package alertprocessor

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/anvil/anvilcol/internal/e2etest"
)

func TestAlertmanagerRefreshWhileFiring(t *testing.T) {
	e, clk, _ := newTestEngine(t, testConfig(RuleConfig{Name: "r", Metric: "m", Window: 10 * time.Second, Op: OpGT, Threshold: 0}))
	e.refresh = 30 * time.Second
	var got []Notification
	for range 7 {
		e.consumeMetrics(gaugeMetrics("m", nil, 1))
		got = append(got, tick(e, clk)...)
	}
	require.Len(t, got, 3)
	assert.False(t, got[0].Refresh)
	assert.True(t, got[1].Refresh)
	assert.True(t, got[2].Refresh)
}

// newIntake starts a recording HTTP server that answers 200.
func newIntake(t *testing.T) *e2etest.Intake { return e2etest.NewIntake(t) }

func waitHits(t *testing.T, in *e2etest.Intake, n int) []e2etest.Request {
	t.Helper()
	require.Eventually(t, func() bool { return len(in.Requests()) >= n }, 10*time.Second, 5*time.Millisecond, "want %d requests", n)
	return in.Requests()
}

func decode(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m), string(b))
	return m
}
