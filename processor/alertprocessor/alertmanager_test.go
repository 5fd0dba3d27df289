package alertprocessor

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"

	"github.com/anvil/anvilcol/internal/e2etest"

	"github.com/anvil/anvilcol/processor/alertprocessor/internal/notify"
)

// TestRealAlertmanagerReceivesAndResolves runs a real Alertmanager
// (/usr/bin/prometheus-alertmanager) and checks that the alert the processor
// raises becomes active there, with its labels and summary, and resolves.
func TestRealAlertmanagerReceivesAndResolves(t *testing.T) {
	base := e2etest.StartAlertmanager(t)

	nc := NewNotifierConfig(notify.TypeAlertmanager)
	nc.Endpoint = base
	cfg := testConfig(RuleConfig{
		Name: "low_agreement", Event: "anvil.agreement.low_score", Field: "value", Op: OpLT, Threshold: 0.4,
		GroupBy: []string{"dimension"}, Severity: SeverityCritical, Window: 500 * time.Millisecond,
		Summary: "Inter-rater agreement {{ .Value }} below 0.4 on {{ .Labels.dimension }}",
	})
	cfg.EvaluationInterval = 200 * time.Millisecond
	cfg.Notifiers = []NotifierConfig{nc}
	require.NoError(t, cfg.Validate())

	p := newTestLogs(t, cfg)
	require.NoError(t, p.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { _ = p.Shutdown(context.Background()) })

	require.NoError(t, p.ConsumeLogs(context.Background(),
		eventLogs("anvil.agreement.low_score", "value", map[string]string{"dimension": "bbox"}, 0.25)))

	var got e2etest.AlertmanagerAlert
	require.Eventually(t, func() bool {
		for _, a := range e2etest.AlertmanagerAlerts(t, base) {
			if a.Labels["alertname"] == "low_agreement" && a.Active() {
				got = a
				return true
			}
		}
		return false
	}, 10*time.Second, 50*time.Millisecond, "alert never became active in Alertmanager")
	assert.Equal(t, map[string]string{"alertname": "low_agreement", "severity": "critical", "dimension": "bbox"}, got.Labels)
	assert.Equal(t, "Inter-rater agreement 0.25 below 0.4 on bbox", got.Annotations["summary"])
	assert.Equal(t, "0.25", got.Annotations["value"])
	assert.WithinDuration(t, time.Now(), got.StartsAt, 10*time.Second)
	assert.True(t, got.EndsAt.After(time.Now().Add(time.Minute)), "firing: endsAt is resend_interval*4 ahead")

	// No more low scores: the rule resolves and Alertmanager no longer has it active.
	require.Eventually(t, func() bool {
		for _, a := range e2etest.AlertmanagerAlerts(t, base) {
			if a.Labels["alertname"] == "low_agreement" && a.Active() {
				return false
			}
		}
		return true
	}, 10*time.Second, 50*time.Millisecond, "alert never resolved in Alertmanager")
}
