//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/anvil/anvilcol/internal/e2etest"
)

// alertConfig is config/gateway.yaml's alert processor with the four ADR-008
// rules on short windows: evaluation every 1s, windows of 2s.
const alertConfig = `
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:${env:OTLP_HTTP_PORT}
processors:
  alert:
    evaluation_interval: 1s
    repeat_interval: 0s
    send_resolved: true
    rules:
      - name: dispatch_latency_p99
        metric: anvil.assignment.dispatch.duration
        stat: p99
        window: 2s
        op: ">"
        threshold: 500
        group_by: [policy_type]
        severity: warning
        summary: "Assignment dispatch p99 {{ .Value }} ms > 500 ms ({{ .Labels.policy_type }})"
      - name: low_agreement
        event: anvil.agreement.low_score
        field: value
        op: "<"
        threshold: 0.4
        group_by: [dimension]
        severity: critical
        summary: "Inter-rater agreement {{ .Value }} below 0.4 on {{ .Labels.dimension }}"
      - name: export_failures
        event: anvil.export.generate.exception
        stat: count
        window: 2s
        op: ">="
        threshold: 3
        severity: error
        summary: "{{ .Value }} export failures in the last hour"
      - name: timeout_spike
        metric: anvil.assignment.timed_out.count
        stat: increase
        window: 2s
        op: ">="
        threshold: 50
        severity: warning
        summary: "{{ .Value }} assignment timeouts in the last hour"
    notifiers:
      - type: webhook
        endpoint: ${env:ALERT_WEBHOOK_URL}
        headers:
          X-Anvil-Token: e2e-secret
        retry_on_failure:
          initial_interval: 100ms
      - type: pagerduty
        endpoint: ${env:PAGERDUTY_URL}
        routing_key: ${env:PAGERDUTY_ROUTING_KEY}
        source: anvilcol-e2e
        min_severity: error
      - type: alertmanager
        endpoint: ${env:ALERTMANAGER_URL}
      - type: log
exporters:
  debug:
    verbosity: basic
extensions:
  health_check:
    endpoint: 127.0.0.1:${env:HEALTH_PORT}
service:
  extensions: [health_check]
  pipelines:
    metrics:
      receivers: [otlp]
      processors: [alert]
      exporters: [debug]
    logs:
      receivers: [otlp]
      processors: [alert]
      exporters: [debug]
`

// evaluationInterval and window are the config's.
const (
	evaluationInterval = time.Second
	alertWindow        = 2 * time.Second
)

// anvilMetrics: a dispatch-duration histogram whose p99 is 995 ms and a
// cumulative timeout counter that began now at 60.
func anvilMetrics() pmetric.Metrics {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", "anvil")
	ms := rm.ScopeMetrics().AppendEmpty().Metrics()
	now := pcommon.NewTimestampFromTime(time.Now())
	h := ms.AppendEmpty()
	h.SetName("anvil.assignment.dispatch.duration")
	h.SetUnit("ms")
	hist := h.SetEmptyHistogram()
	hist.SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
	dp := hist.DataPoints().AppendEmpty()
	dp.SetTimestamp(now)
	dp.Attributes().PutStr("policy_type", "round_robin")
	dp.ExplicitBounds().FromRaw([]float64{100, 250, 500, 1000})
	dp.BucketCounts().FromRaw([]uint64{0, 0, 0, 10, 0})
	dp.SetCount(10)
	dp.SetSum(7000)
	c := ms.AppendEmpty()
	c.SetName("anvil.assignment.timed_out.count")
	sum := c.SetEmptySum()
	sum.SetIsMonotonic(true)
	sum.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	cdp := sum.DataPoints().AppendEmpty()
	cdp.SetStartTimestamp(now)
	cdp.SetTimestamp(now)
	cdp.Attributes().PutStr("queue_id", "q1")
	cdp.SetIntValue(60)
	return md
}

// anvilEvents: one low agreement score and three export failures, as OTLP
// event log records.
func anvilEvents() plog.Logs {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("service.name", "anvil")
	lrs := rl.ScopeLogs().AppendEmpty().LogRecords()
	lr := lrs.AppendEmpty()
	lr.SetEventName("anvil.agreement.low_score")
	lr.SetTimestamp(pcommon.NewTimestampFromTime(time.Now()))
	lr.Body().SetEmptyMap().PutDouble("value", 0.25)
	lr.Attributes().PutStr("dimension", "label")
	lr.Attributes().PutStr("sample_id", "s-1")
	for i := range 3 {
		lr := lrs.AppendEmpty()
		lr.SetEventName("anvil.export.generate.exception")
		lr.SetSeverityNumber(plog.SeverityNumberError)
		lr.Attributes().PutStr("export_id", fmt.Sprintf("e-%d", i))
		lr.Attributes().PutStr("exception.type", "RuntimeError")
	}
	return ld
}

type hookMsg struct {
	Status    string            `json:"status"`
	Rule      string            `json:"rule"`
	Severity  string            `json:"severity"`
	Summary   string            `json:"summary"`
	Value     float64           `json:"value"`
	Threshold float64           `json:"threshold"`
	Labels    map[string]string `json:"labels"`
	DedupKey  string            `json:"dedup_key"`
}

type pdMsg struct {
	RoutingKey  string `json:"routing_key"`
	EventAction string `json:"event_action"`
	DedupKey    string `json:"dedup_key"`
	Payload     *struct {
		Summary       string         `json:"summary"`
		Source        string         `json:"source"`
		Severity      string         `json:"severity"`
		CustomDetails map[string]any `json:"custom_details"`
	} `json:"payload"`
}

// arrivals records when each (rule, status) first reached a stand-in.
type arrivals struct {
	mu sync.Mutex
	at map[string]time.Time
}

func (a *arrivals) mark(key string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.at[key]; !ok {
		a.at[key] = time.Now()
	}
}

func (a *arrivals) get(key string) (time.Time, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	t, ok := a.at[key]
	return t, ok
}

func TestAlertADRRulesFireAndResolveThroughTheBinary(t *testing.T) {
	hookArr := &arrivals{at: map[string]time.Time{}}
	pdArr := &arrivals{at: map[string]time.Time{}}
	hook := e2etest.NewIntake(t)
	hook.Respond(func(r e2etest.Request) (int, http.Header, []byte) {
		var m hookMsg
		if json.Unmarshal(r.Body, &m) == nil {
			hookArr.mark(m.Rule + "/" + m.Status)
		}
		return http.StatusOK, nil, []byte("ok")
	})
	pd := e2etest.NewIntake(t)
	pd.Respond(func(r e2etest.Request) (int, http.Header, []byte) {
		var m pdMsg
		if json.Unmarshal(r.Body, &m) == nil {
			pdArr.mark(m.DedupKey + "/" + m.EventAction)
		}
		return http.StatusAccepted, nil, []byte(`{"status":"success","message":"Event processed"}`)
	})

	am := e2etest.StartAlertmanager(t) // the real one, /usr/bin/prometheus-alertmanager
	otlpPort, healthPort, telemetryPort := e2etest.FreePort(t), e2etest.FreePort(t), e2etest.FreePort(t)
	c := e2etest.Start(t, e2etest.Options{
		ConfigYAML: alertConfig + e2etest.TelemetryYAML(telemetryPort),
		Env: map[string]string{
			"OTLP_HTTP_PORT":        fmt.Sprint(otlpPort),
			"HEALTH_PORT":           fmt.Sprint(healthPort),
			"ALERT_WEBHOOK_URL":     hook.URL + "/hooks/anvil",
			"PAGERDUTY_URL":         pd.URL + "/v2/enqueue",
			"PAGERDUTY_ROUTING_KEY": "e2e0routing0key0000000000000000",
			"ALERTMANAGER_URL":      am,
		},
		HealthPort: healthPort,
	})

	base := fmt.Sprintf("http://127.0.0.1:%d", otlpPort)
	md, ld := anvilMetrics(), anvilEvents()
	sent := time.Now()
	e2etest.PostMetrics(t, base, md)
	e2etest.PostLogs(t, base, ld)

	rules := []string{"dispatch_latency_p99", "low_agreement", "export_failures", "timeout_spike"}
	fireBy := evaluationInterval + time.Second
	e2etest.Eventually(t, time.Until(sent.Add(fireBy)), func() bool {
		for _, r := range rules {
			if _, ok := hookArr.get(r + "/firing"); !ok {
				return false
			}
		}
		return true
	}, "all four rules fire at the webhook within evaluation_interval + 1s")

	// The webhook got the documented payload for each.
	byRule := map[string]hookMsg{}
	for _, r := range hook.RequestsTo("/hooks/anvil") {
		if r.Header.Get("X-Anvil-Token") != "e2e-secret" {
			t.Errorf("webhook header X-Anvil-Token = %q", r.Header.Get("X-Anvil-Token"))
		}
		var m hookMsg
		if err := json.Unmarshal(r.Body, &m); err != nil {
			t.Fatalf("webhook body %s: %v", r.Body, err)
		}
		if m.Status == "firing" {
			byRule[m.Rule] = m
		}
	}
	checks := []struct {
		rule, severity, summary string
		value                   float64
		labels                  map[string]string
	}{
		{"dispatch_latency_p99", "warning", "Assignment dispatch p99 995 ms > 500 ms (round_robin)", 995, map[string]string{"policy_type": "round_robin"}},
		{"low_agreement", "critical", "Inter-rater agreement 0.25 below 0.4 on label", 0.25, map[string]string{"dimension": "label"}},
		{"export_failures", "error", "3 export failures in the last hour", 3, map[string]string{}},
		{"timeout_spike", "warning", "60 assignment timeouts in the last hour", 60, map[string]string{}},
	}
	for _, ck := range checks {
		m := byRule[ck.rule]
		if m.Severity != ck.severity || m.Summary != ck.summary || m.Value != ck.value || fmt.Sprint(m.Labels) != fmt.Sprint(ck.labels) {
			t.Errorf("%s firing: got %+v, want severity %s summary %q value %v labels %v", ck.rule, m, ck.severity, ck.summary, ck.value, ck.labels)
		}
	}

	// Alertmanager holds the four as active alerts with their labels.
	amActive := func() map[string]e2etest.AlertmanagerAlert {
		out := map[string]e2etest.AlertmanagerAlert{}
		for _, a := range e2etest.AlertmanagerAlerts(t, am) {
			if a.Active() {
				out[a.Labels["alertname"]] = a
			}
		}
		return out
	}
	e2etest.Eventually(t, 5*time.Second, func() bool { return len(amActive()) == 4 }, "four active alerts in Alertmanager")
	if a := amActive()["dispatch_latency_p99"]; a.Labels["severity"] != "warning" || a.Labels["policy_type"] != "round_robin" ||
		a.Annotations["summary"] != byRule["dispatch_latency_p99"].Summary {
		t.Errorf("alertmanager dispatch_latency_p99: %+v", a)
	}

	// PagerDuty (min_severity error) got triggers for the critical and the error rule only.
	e2etest.Eventually(t, time.Until(sent.Add(fireBy)), func() bool { return len(pd.RequestsTo("/v2/enqueue")) >= 2 },
		"PagerDuty triggers within evaluation_interval + 1s")
	pdByRule := map[string]pdMsg{}
	for _, r := range pd.RequestsTo("/v2/enqueue") {
		var m pdMsg
		if err := json.Unmarshal(r.Body, &m); err != nil {
			t.Fatalf("pagerduty body %s: %v", r.Body, err)
		}
		if m.EventAction != "trigger" || m.Payload == nil {
			t.Fatalf("pagerduty: unexpected first events %s", r.Body)
		}
		pdByRule[fmt.Sprint(m.Payload.CustomDetails["rule"])] = m
	}
	if len(pdByRule) != 2 {
		t.Fatalf("pagerduty triggers for %v, want low_agreement and export_failures", pdByRule)
	}
	for rule, sev := range map[string]string{"low_agreement": "critical", "export_failures": "error"} {
		m := pdByRule[rule]
		if m.RoutingKey != "e2e0routing0key0000000000000000" || m.Payload.Severity != sev || m.Payload.Source != "anvilcol-e2e" ||
			m.Payload.Summary != byRule[rule].Summary || m.DedupKey != byRule[rule].DedupKey {
			t.Errorf("pagerduty %s: %+v %+v", rule, m, m.Payload)
		}
		if m.Payload.CustomDetails["value"] != byRule[rule].Value || m.Payload.CustomDetails["threshold"] == nil {
			t.Errorf("pagerduty %s custom_details: %v", rule, m.Payload.CustomDetails)
		}
	}

	// Nothing more arrives: each window empties and every rule resolves
	// within evaluation_interval + 1s of the data leaving its window (a
	// window is evaluation_interval-wide slots, so the data leaves it at
	// most window + evaluation_interval after it arrived).
	resolveBy := alertWindow + evaluationInterval + evaluationInterval + time.Second
	e2etest.Eventually(t, time.Until(sent.Add(resolveBy)), func() bool {
		for _, r := range rules {
			if _, ok := hookArr.get(r + "/resolved"); !ok {
				return false
			}
		}
		for _, m := range pdByRule {
			if _, ok := pdArr.get(m.DedupKey + "/resolve"); !ok {
				return false
			}
		}
		return true
	}, "all four rules resolve at the webhook and PagerDuty")
	e2etest.Eventually(t, 5*time.Second, func() bool { return len(amActive()) == 0 }, "alerts resolved in Alertmanager")
	for _, r := range hook.RequestsTo("/hooks/anvil") {
		var m hookMsg
		_ = json.Unmarshal(r.Body, &m)
		if m.Status == "resolved" && m.DedupKey != byRule[m.Rule].DedupKey {
			t.Errorf("%s resolved with dedup_key %s, fired with %s", m.Rule, m.DedupKey, byRule[m.Rule].DedupKey)
		}
	}

	// The log notifier wrote a line per transition; own telemetry counts them.
	// (The output reaches this process through a pipe read on its own
	// goroutine: wait for it.)
	e2etest.Eventually(t, 10*time.Second, func() bool {
		out := c.Output()
		return strings.Contains(out, "alert firing") && strings.Contains(out, "alert resolved")
	}, "log notifier lines in the output")
	fams, err := e2etest.Scrape(t, fmt.Sprintf("http://127.0.0.1:%d/metrics", telemetryPort))
	if err != nil {
		t.Fatal(err)
	}
	sentTotal := map[string]float64{}
	for name, f := range fams {
		if !strings.HasPrefix(name, "otelcol_alert_notifications_sent") {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "notifier" {
					sentTotal[l.GetValue()] += m.GetCounter().GetValue()
				}
			}
		}
	}
	if sentTotal["webhook"] != 8 || sentTotal["pagerduty"] != 4 || sentTotal["log"] != 8 || sentTotal["alertmanager"] != 8 {
		t.Errorf("otelcol_alert_notifications_sent by notifier = %v, want webhook 8, pagerduty 4, log 8, alertmanager 8", sentTotal)
	}
	toState := map[string]float64{}
	if f, ok := fams["otelcol_alert_transitions"]; ok {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "to" {
					toState[l.GetValue()] += m.GetCounter().GetValue()
				}
			}
		}
	}
	if toState["firing"] != 4 || toState["resolved"] != 4 {
		t.Errorf("otelcol_alert_transitions by to = %v, want firing 4, resolved 4", toState)
	}
}
