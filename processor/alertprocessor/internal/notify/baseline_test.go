package notify

import (
	"context"
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// baselineFiring is a baseline rule's notification: Value is the ratio of
// Current to Baseline.
func baselineFiring() Notification {
	return Notification{
		Rule: "agreement_drop", Status: StatusFiring, Severity: SeverityWarning,
		Summary: "agreement_drop: 0.5 vs baseline 0.75 (ratio 0.6666666666666666 < 0.8)",
		Value:   0.5 / 0.75, Threshold: 0.8, Op: "<", Stat: "avg",
		Compare: "ratio", Current: 0.5, Baseline: 0.75,
		Labels:   map[string]string{"queue_id": "q1", "dimension": "bbox"},
		DedupKey: "anvilcol-agreement_drop-0123456789abcdef",
		StartsAt: t0, At: t0,
	}
}

func TestBaselineRulesCarryCurrentAndBaseline(t *testing.T) {
	n := baselineFiring()

	b, err := json.Marshal(newWebhookPayload(n))
	require.NoError(t, err)
	wh := decode(t, b)
	assert.Equal(t, "ratio", wh["compare"])
	assert.Equal(t, 0.5, wh["current"])
	assert.Equal(t, 0.75, wh["baseline"])
	assert.InDelta(t, 0.5/0.75, wh["value"], 1e-12)

	b, err = json.Marshal(pagerDutyPayload(n, "key", "src"))
	require.NoError(t, err)
	cd := decode(t, b)["payload"].(map[string]any)["custom_details"].(map[string]any)
	assert.Equal(t, "ratio", cd["compare"])
	assert.Equal(t, 0.5, cd["current"])
	assert.Equal(t, 0.75, cd["baseline"])

	a := alertmanagerPayload(n, time.Minute)[0]
	assert.Equal(t, map[string]string{
		"summary": n.Summary, "value": "0.6666666666666666", "threshold": "ratio < 0.8", "current": "0.5", "baseline": "0.75",
	}, a.Annotations)

	sl := slackPayload(n, "")
	fields := sl.Blocks[0].Fields
	assert.Equal(t, "*Threshold*\navg ratio < 0.8", fields[1].Text)
	assert.Equal(t, "*Current / baseline*\n0.5 / 0.75", fields[len(fields)-1].Text)

	core, logs := observer.New(zap.InfoLevel)
	require.NoError(t, (&logSender{logger: zap.New(core)}).send(context.Background(), n))
	f := logs.All()[0].ContextMap()
	assert.Equal(t, "ratio", f["compare"])
	assert.Equal(t, 0.5, f["current"])
	assert.Equal(t, 0.75, f["baseline"])
}

// A baseline that had no value is null in JSON, as a value is.
func TestBaselineWithoutValueIsNull(t *testing.T) {
	n := baselineFiring()
	n.Baseline = math.NaN()
	b, err := json.Marshal(newWebhookPayload(n))
	require.NoError(t, err)
	assert.Contains(t, decode(t, b), "baseline")
	assert.Nil(t, decode(t, b)["baseline"])
}

// Other rules' payloads have none of the baseline fields.
func TestOtherRulesHaveNoBaselineFields(t *testing.T) {
	n := firing()
	b, err := json.Marshal(newWebhookPayload(n))
	require.NoError(t, err)
	for _, k := range []string{"compare", "current", "baseline"} {
		assert.NotContains(t, decode(t, b), k)
	}
	b, err = json.Marshal(pagerDutyPayload(n, "key", "src"))
	require.NoError(t, err)
	cd := decode(t, b)["payload"].(map[string]any)["custom_details"].(map[string]any)
	assert.NotContains(t, cd, "baseline")
	assert.NotContains(t, alertmanagerPayload(n, time.Minute)[0].Annotations, "baseline")
	assert.Len(t, slackPayload(n, "").Blocks[0].Fields, 5)
}
