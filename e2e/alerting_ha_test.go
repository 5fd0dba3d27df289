//go:build e2e

package e2e

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"

	"github.com/anvil/anvilcol/internal/e2etest"
)

// amHook is the in-test webhook receiver behind the Alertmanager cluster: it
// counts the alerts of every notification by alertname and status.
type amHook struct {
	in *e2etest.Intake
}

type amNotification struct {
	Alerts []struct {
		Status      string            `json:"status"`
		Labels      map[string]string `json:"labels"`
		Annotations map[string]string `json:"annotations"`
	} `json:"alerts"`
}

// count returns how many notified alerts had alertname and status, and the
// annotations of the last of them.
func (h *amHook) count(t *testing.T, alertname, status string) (int, map[string]string) {
	t.Helper()
	n, last := 0, map[string]string(nil)
	for _, r := range h.in.Requests() {
		var m amNotification
		if err := json.Unmarshal(r.Body, &m); err != nil {
			t.Fatalf("webhook body %s: %v", r.Body, err)
		}
		for _, a := range m.Alerts {
			if a.Labels["alertname"] == alertname && a.Status == status {
				n++
				last = a.Annotations
			}
		}
	}
	return n, last
}

func (h *amHook) waitFor(t *testing.T, alertname, status string) map[string]string {
	t.Helper()
	var ann map[string]string
	e2etest.Eventually(t, 30*time.Second, func() bool {
		n, a := h.count(t, alertname, status)
		ann = a
		return n >= 1
	}, "no %s notification for %s reached the webhook behind Alertmanager", status, alertname)
	return ann
}

// alertingReplica is one process of config/alerting.yaml on its own storage.
type alertingReplica struct {
	t       *testing.T
	env     map[string]string
	base    string // https://127.0.0.1:<otlp http port>
	metrics string // own telemetry
	health  int
	c       *e2etest.Collector
}

func startReplica(t *testing.T, r *alertingReplica) {
	t.Helper()
	r.c = e2etest.Start(t, e2etest.Options{Config: "config/alerting.yaml", Env: r.env, HealthPort: r.health})
}

func newReplica(t *testing.T, tlsFiles e2etest.TLSFiles, token string, amURLs []string) *alertingReplica {
	t.Helper()
	httpPort, tel, health := e2etest.FreePort(t), e2etest.FreePort(t), e2etest.FreePort(t)
	r := &alertingReplica{
		t: t,
		env: map[string]string{
			"ANVILCOL_ALERTING_TOKEN":            token,
			"ANVILCOL_TLS_CERT_FILE":             tlsFiles.CertFile,
			"ANVILCOL_TLS_KEY_FILE":              tlsFiles.KeyFile,
			"ANVILCOL_LISTEN_HOST":               "127.0.0.1",
			"ANVILCOL_OTLP_GRPC_PORT":            strconv.Itoa(e2etest.FreePort(t)),
			"ANVILCOL_OTLP_HTTP_PORT":            strconv.Itoa(httpPort),
			"ANVILCOL_HEALTH_PORT":               strconv.Itoa(health),
			"ANVILCOL_TELEMETRY_PORT":            strconv.Itoa(tel),
			"ANVILCOL_STORAGE_DIR":               t.TempDir(),
			"ANVILCOL_ALERT_EVALUATION_INTERVAL": "500ms",
			"ANVILCOL_ALERT_HOURLY_WINDOW":       "8s",
			"ANVILCOL_ALERT_LATENCY_WINDOW":      "2s",
			"ANVILCOL_ALERTMANAGER_URLS":         "[" + strings.Join(amURLs, ", ") + "]",
		},
		base:    fmt.Sprintf("https://127.0.0.1:%d", httpPort),
		metrics: fmt.Sprintf("http://127.0.0.1:%d/metrics", tel),
		health:  health,
	}
	startReplica(t, r)
	return r
}

// otlpClient posts OTLP/HTTP protobuf over TLS (the test CA) with the bearer token.
type otlpClient struct {
	client *http.Client
	token  string
}

func newOTLPClient(t *testing.T, caFile, token string) *otlpClient {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	return &otlpClient{token: token, client: &http.Client{Timeout: 5 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}}
}

func (c *otlpClient) post(t *testing.T, url string, body []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.client.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("POST %s: HTTP %d", url, resp.StatusCode)
	}
}

// logs sends ld to every replica given (the gateways feed both the same data).
func (c *otlpClient) logs(t *testing.T, ld plog.Logs, rs ...*alertingReplica) {
	t.Helper()
	body, err := plogotlp.NewExportRequestFromLogs(ld).MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		c.post(t, r.base+"/v1/logs", body)
	}
}

func (c *otlpClient) metrics(t *testing.T, md pmetric.Metrics, rs ...*alertingReplica) {
	t.Helper()
	body, err := pmetricotlp.NewExportRequestFromMetrics(md).MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		c.post(t, r.base+"/v1/metrics", body)
	}
}

// events builds n log records of event name with attributes, from writer.
func events(writer, name string, n int, attrs map[string]string, body map[string]float64) plog.Logs {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("service.name", "anvil")
	rl.Resource().Attributes().PutStr("service.instance.id", writer)
	lrs := rl.ScopeLogs().AppendEmpty().LogRecords()
	for range n {
		lr := lrs.AppendEmpty()
		lr.SetEventName(name)
		lr.SetTimestamp(pcommon.NewTimestampFromTime(time.Now()))
		for k, v := range attrs {
			lr.Attributes().PutStr(k, v)
		}
		m := lr.Body().SetEmptyMap()
		for k, v := range body {
			m.PutDouble(k, v)
		}
	}
	return ld
}

// timeouts is one writer's cumulative anvil.assignment.timed_out.count.
func timeouts(writer string, start time.Time, total int64) pmetric.Metrics {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", "anvil")
	rm.Resource().Attributes().PutStr("service.instance.id", writer)
	m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName("anvil.assignment.timed_out.count")
	s := m.SetEmptySum()
	s.SetIsMonotonic(true)
	s.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	dp := s.DataPoints().AppendEmpty()
	dp.SetStartTimestamp(pcommon.NewTimestampFromTime(start))
	dp.SetTimestamp(pcommon.NewTimestampFromTime(time.Now()))
	dp.SetIntValue(total)
	return md
}

// activeFiring reads otelcol_alert_active{rule, state="firing"} of a replica.
func activeFiring(t *testing.T, r *alertingReplica, rule string) (float64, bool) {
	t.Helper()
	fams, err := e2etest.Scrape(t, r.metrics)
	if err != nil {
		return 0, false
	}
	f, ok := fams["otelcol_alert_active"]
	if !ok {
		return 0, false
	}
	for _, m := range f.GetMetric() {
		if e2etest.HasLabels(m, map[string]string{"rule": rule, "state": "firing"}) {
			return m.GetGauge().GetValue(), true
		}
	}
	return 0, false
}

// logLines counts the log notifier's lines "alert <status>" for rule in out.
func logLines(out, status, rule string) int {
	n := 0
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "alert "+status) && strings.Contains(l, `"rule": "`+rule+`"`) {
			n++
		}
	}
	return n
}

// TestAlertingPairPagesOnceThroughAlertmanagerCluster runs two replicas of
// config/alerting.yaml fed the same data, a real Alertmanager cluster of two
// they both post to, and a webhook behind it:
//  1. both up: an increase summed over three writers fires and resolves, one
//     notification each;
//  2. one replica killed -9 while an alert fires and restarted on its
//     storage: it does not page again and resolves once the condition clears;
//  3. the other replica down for good: alerts still fire and resolve through
//     the survivor.
//
// Every alert reaches the webhook exactly once firing and once resolved.
func TestAlertingPairPagesOnceThroughAlertmanagerCluster(t *testing.T) {
	hook := &amHook{in: e2etest.NewIntake(t)}
	am := e2etest.StartAlertmanagerCluster(t, 2, hook.in.URL+"/alerts")
	tlsFiles := e2etest.NewTLS(t)
	const token = "alerting-e2e-token"
	r0 := newReplica(t, tlsFiles, token, am.URLs)
	r1 := newReplica(t, tlsFiles, token, am.URLs)
	otlp := newOTLPClient(t, tlsFiles.CAFile, token)

	// 1. timeout_spike (increase >= 50 over the window) from three writers of
	// 20 each: only their sum crosses the threshold. The series start now, after
	// the replicas did, so each first point counts in full.
	start := time.Now()
	for _, w := range []string{"node-1", "node-2", "node-3"} {
		otlp.metrics(t, timeouts(w, start, 20), r0, r1)
	}
	ann := hook.waitFor(t, "timeout_spike", "firing")
	if ann["value"] != "60" {
		t.Errorf("timeout_spike fired with value %q, want 60 (20 from each of three writers)", ann["value"])
	}
	hook.waitFor(t, "timeout_spike", "resolved") // the window (8s) empties

	// 2. export_failures (3 in the window) fires; replica 1 is killed -9 while
	// it fires and restarted on the same storage before the window empties.
	otlp.logs(t, events("node-1", "anvil.export.generate.exception", 3, nil, nil), r0, r1)
	hook.waitFor(t, "export_failures", "firing")
	e2etest.Eventually(t, 10*time.Second, func() bool {
		v, ok := activeFiring(t, r1, "export_failures")
		return ok && v == 1
	}, "replica 1 does not report export_failures firing in otelcol_alert_active")
	r1.c.Kill()
	startReplica(t, r1)
	if v, ok := activeFiring(t, r1, "export_failures"); !ok || v != 1 {
		t.Errorf("restarted replica: otelcol_alert_active{rule=export_failures,state=firing} = %v (%v), want 1 from its saved state", v, ok)
	}
	hook.waitFor(t, "export_failures", "resolved")
	e2etest.Eventually(t, 10*time.Second, func() bool {
		return logLines(r1.c.Output(), "resolved", "export_failures") == 1
	}, "the restarted replica never resolved export_failures from its saved state:\n%s", r1.c.Output())
	if n := logLines(r1.c.Output(), "firing", "export_failures"); n != 0 {
		t.Errorf("the restarted replica notified export_failures firing %d times; it was already notified before the kill (no re-page)", n)
	}

	// 3. Replica 0 is down for good; replica 1 alone fires and resolves.
	if err := r0.c.Stop(); err != nil {
		t.Fatalf("stop replica 0: %v", err)
	}
	otlp.logs(t, events("node-2", "anvil.agreement.low_score", 1, map[string]string{"dimension": "bbox"}, map[string]float64{"value": 0.21}), r1)
	ann = hook.waitFor(t, "low_agreement", "firing")
	if ann["summary"] != "Inter-rater agreement 0.21 below 0.4 on bbox" {
		t.Errorf("low_agreement summary %q", ann["summary"])
	}
	hook.waitFor(t, "low_agreement", "resolved")

	// Exactly once each. A duplicate from the second Alertmanager would come
	// within one group interval (2s) plus its peer timeout (100ms) after the
	// first member's notification. Nothing says "no more": Alertmanager 0.25
	// counts attempted sends (alertmanager_notifications_total), not a send
	// its dedup stage skipped; alertmanager_nflog_queries_total grows on every
	// flush of a group, firing or resolved; and an emptied aggregation group
	// is only removed (alertmanager_dispatcher_aggregation_groups) every 30s.
	// So this is the one bounded window, covering the last notification
	// (earlier ones had the whole of the later phases to show duplicates),
	// and it fails as soon as a second notification of anything arrives.
	e2etest.Consistently(t, 4*time.Second, func() bool {
		for _, rule := range []string{"timeout_spike", "export_failures", "low_agreement"} {
			for _, status := range []string{"firing", "resolved"} {
				if n, _ := hook.count(t, rule, status); n > 1 {
					return false
				}
			}
		}
		return true
	}, "a second notification reached the webhook")
	for _, rule := range []string{"timeout_spike", "export_failures", "low_agreement"} {
		for _, status := range []string{"firing", "resolved"} {
			if n, _ := hook.count(t, rule, status); n != 1 {
				t.Errorf("%s: %d %s notifications reached the webhook, want exactly 1", rule, n, status)
			}
		}
	}
	if t.Failed() {
		for _, r := range hook.in.Requests() {
			t.Logf("webhook %s: %s", r.At.Format(time.RFC3339Nano), r.Body)
		}
	}
}
