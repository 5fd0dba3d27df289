package alertprocessor

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
)

func TestAlertmanagerEndpointsEachGetEveryAlertWithOwnRetries(t *testing.T) {
	up := newIntake(t)
	flaky := newIntake(t, status(http.StatusServiceUnavailable), status(http.StatusServiceUnavailable))
	nc := fastRetry(NewNotifierConfig(notifierAlertmanager))
	nc.Endpoints = []string{up.URL, flaky.URL + "/"} // a trailing slash is the same base URL
	nc.Endpoint = up.URL                             // the shorthand, already in the list: not posted twice

	ws, tt := buildTestWorkers(t, wallClock{}, nc)
	require.Len(t, ws, 2, "one worker (queue, retries) per Alertmanager")
	for _, w := range ws {
		w.start()
		t.Cleanup(func() { w.shutdown(context.Background()) })
		w.offer(firing(), true)
		w.offer(resolved(), true)
	}

	require.Eventually(t, func() bool {
		return len(up.RequestsTo(alertmanagerPath)) == 2 && len(flaky.RequestsTo(alertmanagerPath)) == 4
	}, 5*time.Second, 10*time.Millisecond)
	assert.Len(t, up.Requests(), 2, "the healthy one got firing and resolved once each")
	last := flaky.RequestsTo(alertmanagerPath)
	assert.Contains(t, string(last[2].Body), `"alertname":"dispatch_latency_p99"`, "the flaky one got the firing alert after two 503s")
	assert.Contains(t, string(last[3].Body), `"endsAt":"2026-03-01T10:01:30Z"`, "then the resolution")
	require.Eventually(t, func() bool {
		return counterValue(t, tt, "otelcol_alert_notifications_sent", attribute.String("notifier", "alertmanager")) == 4
	}, 5*time.Second, 10*time.Millisecond)
	assert.Zero(t, counterValue(t, tt, "otelcol_alert_notifications_failed"))
}

func TestAlertmanagerEndpointsValidation(t *testing.T) {
	for _, tc := range []struct {
		name  string
		edit  func(*NotifierConfig)
		error string
	}{
		{"neither", func(*NotifierConfig) {}, "`notifiers[0].endpoints` (or `notifiers[0].endpoint`) is required for an alertmanager notifier"},
		{"empty entry", func(n *NotifierConfig) { n.Endpoints = []string{"http://am-0:9093", ""} }, "`notifiers[0].endpoints[1]` is empty"},
		{"on another type", func(n *NotifierConfig) {
			n.Type = notifierWebhook
			n.Endpoint = "http://x"
			n.Endpoints = []string{"http://y"}
		},
			"`notifiers[0].endpoints` applies to alertmanager notifiers only"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nc := NewNotifierConfig(notifierAlertmanager)
			tc.edit(&nc)
			cfg := createDefaultConfig().(*Config)
			cfg.Notifiers = []NotifierConfig{nc}
			err := cfg.Validate()
			require.ErrorIs(t, err, ErrInvalidConfig)
			assert.Contains(t, err.Error(), tc.error)
		})
	}
	nc := NewNotifierConfig(notifierAlertmanager)
	nc.Endpoint = "http://am-0:9093"
	cfg := createDefaultConfig().(*Config)
	cfg.Notifiers = []NotifierConfig{nc}
	assert.NoError(t, cfg.Validate(), "endpoint alone is a one-element list")
	assert.Equal(t, []string{"http://am-0:9093"}, nc.alertmanagerEndpoints())
}
