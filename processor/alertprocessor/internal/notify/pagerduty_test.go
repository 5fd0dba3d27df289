package notify

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPagerDutyPayload(t *testing.T) {
	in := newIntake(t)
	nc := NewConfig(TypePagerDuty)
	nc.Endpoint = in.URL + "/v2/enqueue"
	nc.PagerDuty.RoutingKey = "R0UT1NGKEY0123456789abcdef012345"
	nc.PagerDuty.Source = "anvilcol-gateway-1"
	w, _ := startWorker(t, nc)
	w.offer(firing())
	w.offer(resolved())
	hs := waitHits(t, in, 2)
	assert.Equal(t, "/v2/enqueue", hs[0].Path)

	trig := decode(t, hs[0].Body)
	assert.Equal(t, nc.PagerDuty.RoutingKey, trig["routing_key"])
	assert.Equal(t, "trigger", trig["event_action"])
	assert.Equal(t, firing().DedupKey, trig["dedup_key"])
	p := trig["payload"].(map[string]any)
	assert.Equal(t, "Assignment dispatch p99 612.5 ms > 500 ms (round_robin)", p["summary"])
	assert.Equal(t, "anvilcol-gateway-1", p["source"])
	assert.Equal(t, "critical", p["severity"])
	assert.Equal(t, "2026-03-01T10:00:00Z", p["timestamp"])
	assert.Equal(t, "dispatch_latency_p99", p["class"])
	assert.Equal(t, "policy_type=round_robin", p["group"])
	cd := p["custom_details"].(map[string]any)
	assert.Equal(t, 612.5, cd["value"])
	assert.Equal(t, 500.0, cd["threshold"])
	assert.Equal(t, ">", cd["op"])
	assert.Equal(t, "p99", cd["stat"])
	assert.Equal(t, "dispatch_latency_p99", cd["rule"])
	assert.Equal(t, map[string]any{"policy_type": "round_robin"}, cd["labels"])

	res := decode(t, hs[1].Body)
	assert.Equal(t, "resolve", res["event_action"])
	assert.Equal(t, trig["dedup_key"], res["dedup_key"], "resolve names the alert trigger opened")
	assert.Equal(t, nc.PagerDuty.RoutingKey, res["routing_key"])
	assert.NotContains(t, res, "payload")
}

func TestPagerDutyDefaultEndpoint(t *testing.T) {
	nc := NewConfig(TypePagerDuty)
	nc.PagerDuty.RoutingKey = "k"
	ns, _ := buildTestNotifiers(t, wallClock{}, nc)
	assert.Equal(t, DefaultPagerDutyEndpoint, ns.workers[0].sender.(*pagerDutySender).ep.url)
}

func TestRetry429HonoursRetryAfter(t *testing.T) {
	clk := newFakeClock()
	in, times := clockedIntake(t, clk, status(http.StatusTooManyRequests, "Retry-After", "1"))
	nc := fastRetry(NewConfig(TypePagerDuty))
	nc.Endpoint, nc.PagerDuty.RoutingKey = in.URL, "k"
	w, _ := startWorkerOn(t, clk, nc)
	w.offer(firing())
	runClock(t, clk, func() bool { return len(in.Requests()) >= 2 })
	at := times()
	assert.Equal(t, time.Second, at[1].Sub(at[0]), "Retry-After: 1 beats the 10ms backoff")
}

func TestPagerDutySummaryIsCut(t *testing.T) {
	n := firing()
	n.Summary = string(make([]byte, 2000))
	p := pagerDutyPayload(n, "k", "s").Payload
	require.NotNil(t, p)
	assert.Len(t, p.Summary, pdMaxSummary)
}
