package notify

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
)

func TestSlackPayload(t *testing.T) {
	in := newIntake(t)
	nc := NewConfig(TypeSlack)
	nc.Slack.WebhookURL = in.URL + "/services/T/B/X"
	nc.Slack.Channel = "#anvil-alerts"
	clk := newFakeClock() // the second message waits for its pacing slot on it
	w, tt := startWorkerOn(t, clk, nc)
	w.offer(firing())
	h := waitHits(t, in, 1)[0]
	assert.Equal(t, "/services/T/B/X", h.Path)
	assert.Equal(t, "application/json", h.Header.Get("Content-Type"))
	m := decode(t, h.Body)
	assert.Equal(t, "#anvil-alerts", m["channel"])
	assert.Equal(t, "[FIRING:critical] dispatch_latency_p99: Assignment dispatch p99 612.5 ms > 500 ms (round_robin)", m["text"])
	blocks := m["blocks"].([]any)
	require.Len(t, blocks, 1)
	sec := blocks[0].(map[string]any)
	assert.Equal(t, "section", sec["type"])
	text := sec["text"].(map[string]any)
	assert.Equal(t, "mrkdwn", text["type"])
	assert.Equal(t, "*[FIRING:critical] dispatch_latency_p99*\nAssignment dispatch p99 612.5 ms > 500 ms (round_robin)", text["text"])
	var fields []string
	for _, f := range sec["fields"].([]any) {
		ff := f.(map[string]any)
		assert.Equal(t, "mrkdwn", ff["type"])
		fields = append(fields, ff["text"].(string))
	}
	assert.Equal(t, []string{
		"*Value*\n612.5", "*Threshold*\np99 > 500", "*Severity*\ncritical",
		"*Labels*\npolicy_type=round_robin", "*Since*\n2026-03-01T10:00:00Z",
	}, fields)
	require.Eventually(t, func() bool {
		return counterValue(t, tt, "otelcol_alert_notifications_sent", attribute.String("notifier", "slack")) == 1
	}, 5*time.Second, 5*time.Millisecond)

	w.offer(resolved())
	runClock(t, clk, func() bool { return len(in.Requests()) >= 2 })
	m = decode(t, in.Requests()[1].Body)
	assert.Equal(t, "[RESOLVED] dispatch_latency_p99: Assignment dispatch p99 120 ms > 500 ms (round_robin)", m["text"])
}

func TestSlackRepeatSaysStillFiring(t *testing.T) {
	n := firing()
	n.Repeat = true
	m := slackPayload(n, "")
	assert.Equal(t, "[FIRING:critical] dispatch_latency_p99: Assignment dispatch p99 612.5 ms > 500 ms (round_robin) (still firing)", m.Text)
	assert.Empty(t, m.Channel)
}

func TestSlackPacesOneMessagePerSecondAndHonours429(t *testing.T) {
	clk := newFakeClock()
	in, times := clockedIntake(t, clk, status(http.StatusTooManyRequests, "Retry-After", "2"))
	nc := fastRetry(NewConfig(TypeSlack))
	nc.Slack.WebhookURL = in.URL
	w, tt := startWorkerOn(t, clk, nc)
	for range 3 {
		w.offer(firing())
	}
	// The pacing and the retry wait on the fake clock: runClock moves it
	// to each slot, no real second passes.
	runClock(t, clk, func() bool { return len(in.Requests()) >= 4 })
	at := times()
	require.Len(t, at, 4)
	// 1st answered 429 Retry-After: 2 -> the retry waits 2s; then 1/s.
	assert.Equal(t, 2*time.Second, at[1].Sub(at[0]))
	assert.Equal(t, time.Second, at[2].Sub(at[1]))
	assert.Equal(t, time.Second, at[3].Sub(at[2]))
	require.Eventually(t, func() bool {
		return counterValue(t, tt, "otelcol_alert_notifications_sent", attribute.String("notifier", "slack")) == 3
	}, 5*time.Second, 5*time.Millisecond)
	assert.Equal(t, int64(0), counterValue(t, tt, "otelcol_alert_notifications_failed"))
}

func TestSlackNotifiersToOneWebhookSharePacing(t *testing.T) {
	a, b, other := NewConfig(TypeSlack), NewConfig(TypeSlack), NewConfig(TypeSlack)
	a.Slack.WebhookURL, b.Slack.WebhookURL, other.Slack.WebhookURL = "http://hooks/1", "http://hooks/1", "http://hooks/2"
	b.Slack.Channel = "#other"
	ns, _ := buildTestNotifiers(t, newFakeClock(), a, b, other)
	pace := func(i int) *pacer { return ns.workers[i].sender.(*slackSender).pace }
	assert.Same(t, pace(0), pace(1), "one pacer per webhook URL")
	assert.NotSame(t, pace(0), pace(2))
}

func TestPacerSpacesCallersAndHolds(t *testing.T) {
	clk := newFakeClock()
	p := newPacers(clk).get("u", time.Second)
	start := clk.Now()
	var at []time.Duration
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 4 {
			if i == 2 {
				p.delay(5 * time.Second) // a 429 with Retry-After: 5
			}
			require.NoError(t, p.wait(t.Context()))
			at = append(at, clk.Now().Sub(start))
		}
	}()
	runClock(t, clk, func() bool {
		select {
		case <-done:
			return true
		default:
			return false
		}
	})
	assert.Equal(t, []time.Duration{0, time.Second, 6 * time.Second, 7 * time.Second}, at)
}
