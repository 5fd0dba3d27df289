package notify

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
)

func TestAlertmanagerPayload(t *testing.T) {
	in := newIntake(t, status(http.StatusOK))
	nc := NewConfig(TypeAlertmanager)
	nc.Endpoint = in.URL + "/"
	ns, _ := buildTestNotifiers(t, wallClock{}, nc)
	w := ns.workers[0]
	w.sendResolved = false // alertmanager learns of resolutions even without send_resolved
	ns.Start()
	t.Cleanup(func() { ns.Shutdown(context.Background()) })
	w.offer(firing())
	w.offer(resolved())
	hs := waitHits(t, in, 2)
	assert.Equal(t, "/api/v2/alerts", hs[0].Path)
	var alerts []map[string]any
	require.NoError(t, json.Unmarshal(hs[0].Body, &alerts))
	require.Len(t, alerts, 1)
	a := alerts[0]
	assert.Equal(t, map[string]any{"alertname": "dispatch_latency_p99", "severity": "critical", "policy_type": "round_robin"}, a["labels"])
	assert.Equal(t, map[string]any{
		"summary": "Assignment dispatch p99 612.5 ms > 500 ms (round_robin)", "value": "612.5", "threshold": "> 500",
	}, a["annotations"])
	assert.Equal(t, "2026-03-01T10:00:00Z", a["startsAt"])
	assert.Equal(t, "2026-03-01T10:04:00Z", a["endsAt"], "firing: 4 resend intervals ahead")

	require.NoError(t, json.Unmarshal(hs[1].Body, &alerts))
	assert.Equal(t, "2026-03-01T10:00:00Z", alerts[0]["startsAt"])
	assert.Equal(t, "2026-03-01T10:01:30Z", alerts[0]["endsAt"], "resolved: the resolution time")
}

func TestAlertmanagerLabelNamesAreSanitized(t *testing.T) {
	n := firing()
	n.Labels = map[string]string{"service.name": "anvil", "alertname": "x", "empty": ""}
	a := alertmanagerPayload(n, time.Minute)[0]
	assert.Equal(t, map[string]string{"alertname": "dispatch_latency_p99", "severity": "critical", "service_name": "anvil", "group_alertname": "x"}, a.Labels)
}

func TestAlertmanagerTakesRefreshesOthersDoNot(t *testing.T) {
	am := NewConfig(TypeAlertmanager)
	am.Endpoint = "http://am-0:9093"
	am.Alertmanager.ResendInterval = 30 * time.Second
	slow := NewConfig(TypeAlertmanager)
	slow.Endpoint = "http://am-1:9093"
	wh := NewConfig(TypeWebhook)
	wh.Endpoint = "http://hook"
	ns, _ := buildTestNotifiers(t, wallClock{}, am, slow, wh)
	assert.Equal(t, 30*time.Second, ns.ResendInterval(), "the shortest resend_interval")
	refresh := firing()
	refresh.Refresh = true
	ns.Offer(refresh)
	assert.Len(t, ns.workers[0].queue, 1)
	assert.Len(t, ns.workers[1].queue, 1)
	assert.Empty(t, ns.workers[2].queue, "keep-alives are for Alertmanager only")
}

func TestAlertmanagerEndpointsEachGetEveryAlertWithOwnRetries(t *testing.T) {
	up := newIntake(t)
	flaky := newIntake(t, status(http.StatusServiceUnavailable), status(http.StatusServiceUnavailable))
	nc := fastRetry(NewConfig(TypeAlertmanager))
	nc.Alertmanager.Endpoints = []string{up.URL, flaky.URL + "/"} // a trailing slash is the same base URL
	nc.Endpoint = up.URL                                          // the shorthand, already in the list: not posted twice

	ns, tt := buildTestNotifiers(t, wallClock{}, nc)
	require.Len(t, ns.workers, 2, "one worker (queue, retries) per Alertmanager")
	ns.Start()
	t.Cleanup(func() { ns.Shutdown(context.Background()) })
	ns.Offer(firing())
	ns.Offer(resolved())

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
