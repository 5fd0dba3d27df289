//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"gopkg.in/yaml.v3"

	"github.com/anvil/anvilcol/contract"
	"github.com/anvil/anvilcol/internal/e2etest"
)

// deploy/ is what runs beside anvilcol: the Prometheus rules and the Grafana
// dashboards. This test runs the fleet's shipped configs (config/agent.yaml
// in front of config/gateway.yaml) and a real Prometheus scraping the
// gateway's Prometheus exporter and both collectors' own telemetry, with the
// rules of deploy/prometheus loaded. It sends events covering the whole
// catalog through the agent's anvil receiver and then checks, through
// Prometheus' HTTP API, that every dashboard query returns data, that every
// recording rule yields series, and that the four ADR-008 alerts fire in
// Prometheus and in the gateway's alert processor alike.
func TestDeployDashboardsAndRulesOnARealPrometheus(t *testing.T) {
	root := e2etest.RepoRoot(t)
	tls := e2etest.NewTLS(t)
	const token = "e2e-gateway-token"

	// Foundation and AITrace refuse everything (400, permanent): the pipeline
	// dashboard's send-failure panels need failures to show.
	refuse := func(e2etest.Request) (int, http.Header, []byte) { return 400, nil, []byte(`{"error":"e2e refuses"}`) }
	foundation, aitrace := e2etest.NewIntake(t), e2etest.NewIntake(t)
	foundation.Respond(refuse)
	aitrace.Respond(refuse)

	gw := struct{ grpc, http, prom, health, telemetry int }{
		e2etest.FreePort(t), e2etest.FreePort(t), e2etest.FreePort(t), e2etest.FreePort(t), e2etest.FreePort(t)}
	e2etest.Start(t, e2etest.Options{Config: "config/gateway.yaml", HealthPort: gw.health, Env: map[string]string{
		"ANVILCOL_GATEWAY_TOKEN":       token,
		"ANVILCOL_TLS_CERT_FILE":       tls.CertFile,
		"ANVILCOL_TLS_KEY_FILE":        tls.KeyFile,
		"DD_API_KEY":                   "0123456789abcdef0123456789abcdef",
		"ANVILCOL_TRACING_ENDPOINT":    fmt.Sprintf("127.0.0.1:%d", e2etest.FreePort(t)), // nothing listens: retried in the queue
		"ANVILCOL_TRACING_INSECURE":    "true",
		"ANVILCOL_LISTEN_HOST":         "127.0.0.1",
		"ANVILCOL_OTLP_GRPC_PORT":      fmt.Sprint(gw.grpc),
		"ANVILCOL_OTLP_HTTP_PORT":      fmt.Sprint(gw.http),
		"ANVILCOL_PROMETHEUS_PORT":     fmt.Sprint(gw.prom),
		"ANVILCOL_HEALTH_PORT":         fmt.Sprint(gw.health),
		"ANVILCOL_TELEMETRY_PORT":      fmt.Sprint(gw.telemetry),
		"ANVILCOL_FOUNDATION_ENDPOINT": foundation.URL,
		"ANVILCOL_FOUNDATION_TOKEN":    "f-token",
		"ANVILCOL_AITRACE_ENDPOINT":    aitrace.URL,
		"ANVILCOL_AITRACE_TOKEN":       "a-token",
		"ANVILCOL_STORAGE_DIR":         t.TempDir(),
		"ANVILCOL_ZERO_HOLD":           "20s", // 1 s scrapes + the rules' 15 s steps
	}})

	ag := struct{ anvil, grpc, http, statsd, health, telemetry int }{
		e2etest.FreePort(t), e2etest.FreePort(t), e2etest.FreePort(t), e2etest.FreeUDPPort(t), e2etest.FreePort(t), e2etest.FreePort(t)}
	e2etest.Start(t, e2etest.Options{Binary: e2etest.AgentBinary(t), Config: "config/agent.yaml", HealthPort: ag.health, Env: map[string]string{
		"ANVILCOL_GATEWAY_ENDPOINT":       fmt.Sprintf("localhost:%d", gw.grpc),
		"ANVILCOL_GATEWAY_TOKEN":          token,
		"ANVILCOL_GATEWAY_CA_FILE":        tls.CAFile,
		"ANVILCOL_STORAGE_DIR":            t.TempDir(),
		"ANVILCOL_NODE_NAME":              "node-1",
		"ANVILCOL_METRICS_FLUSH_INTERVAL": "1s",
		"ANVILCOL_ANVIL_PORT":             fmt.Sprint(ag.anvil),
		"ANVILCOL_OTLP_GRPC_PORT":         fmt.Sprint(ag.grpc),
		"ANVILCOL_OTLP_HTTP_PORT":         fmt.Sprint(ag.http),
		"ANVILCOL_STATSD_PORT":            fmt.Sprint(ag.statsd),
		"ANVILCOL_HEALTH_PORT":            fmt.Sprint(ag.health),
		"ANVILCOL_TELEMETRY_PORT":         fmt.Sprint(ag.telemetry),
	}})

	prom := startDeployPrometheus(t, filepath.Join(root, "deploy", "prometheus", "*-rules.yaml"),
		[]string{fmt.Sprintf("127.0.0.1:%d", gw.prom)}, fmt.Sprintf(`
  - job_name: anvilcol-gateway
    static_configs:
      - targets: ["127.0.0.1:%d"]
  - job_name: anvilcol-agent
    static_configs:
      - targets: ["127.0.0.1:%d"]
`, gw.telemetry, ag.telemetry))

	var exprs []deployExpr
	for _, f := range []string{"anvil-queue-health.json", "anvilcol-pipeline.json"} {
		exprs = append(exprs, dashboardExprs(t, filepath.Join(root, "deploy", "grafana", f))...)
	}
	for _, r := range ruleFile(t, filepath.Join(root, "deploy", "prometheus", "anvil-rules.yaml")) {
		if r.Record != "" {
			exprs = append(exprs, deployExpr{where: "recording rule", expr: r.Record})
		}
	}
	if len(exprs) < 40 {
		t.Fatalf("only %d dashboard queries and recording rules found", len(exprs))
	}
	// A query over the day that ended an hour ago (the quality baselines), or
	// over the last day's full hours (labels, cost and SLO per day), has no
	// data in a Prometheus started minutes ago; the promtool suite checks
	// their values, and e2e/quality_test.go the baselines' at a test's time
	// scale.
	exprs = slices.DeleteFunc(exprs, func(e deployExpr) bool { return needsHistory(e.expr, e.expr) })

	// The first round of events must reach Prometheus through both collectors.
	anvilURL := fmt.Sprintf("http://127.0.0.1:%d/v1/events", ag.anvil)
	otlpURL := fmt.Sprintf("http://127.0.0.1:%d", ag.http)
	send := func(round int) {
		e2etest.Post(t, anvilURL, "application/json", deployEvents(t, root, round))
		e2etest.PostMetrics(t, otlpURL, cardinalityMetrics())
	}
	send(0)
	e2etest.Eventually(t, 90*time.Second, func() bool {
		s, err := prom.Query(`sum(anvil_label_submit_count_total) > 0`)
		return err == nil && len(s) > 0
	}, "the events reached Prometheus")

	// Then, while events keep arriving (so that rates and quantiles over
	// $__rate_interval are numbers, not 0 or NaN, and per-event alerts are
	// live), every query must return at least one sample that is a number at
	// least once, and each of the four ADR-008 alerts must fire, on anvilcol's
	// real metric names, in Prometheus and in the gateway's alert processor on
	// the same data.
	rules := []string{"dispatch_latency_p99", "low_agreement", "export_failures", "timeout_spike"}
	failing := map[string]string{}
	for _, e := range exprs {
		failing[e.where+": "+substituteGrafana(e.expr)] = "not queried"
	}
	promFiring, procFiring := map[string]bool{}, map[string]bool{}
	done := func() bool {
		for _, r := range rules {
			if !promFiring[r] || !procFiring[r] {
				return false
			}
		}
		return len(failing) == 0
	}
	deadline := time.Now().Add(2 * time.Minute)
	for round := 1; !done() && time.Now().Before(deadline); round++ {
		send(round)
		// Pacing, not a wait for an outcome: one round of events per few
		// scrapes and rule evaluations keeps rates and quantiles live; every
		// round re-checks what is still open and the loop ends when all is.
		time.Sleep(3 * time.Second)
		for _, e := range exprs {
			q := substituteGrafana(e.expr)
			key := e.where + ": " + q
			if _, open := failing[key]; !open {
				continue
			}
			s, err := prom.Query(q)
			switch {
			case err != nil:
				failing[key] = err.Error()
			case !hasNumber(s):
				failing[key] = fmt.Sprintf("no data (%d samples, none a number)", len(s))
			default:
				delete(failing, key)
			}
		}
		alerts, err := prom.Alerts()
		if err != nil {
			t.Logf("alerts: %v", err)
		}
		for _, a := range alerts {
			if a.State == "firing" {
				promFiring[a.Labels["alertname"]] = true
			}
		}
		s, _ := prom.Query(`sum by (rule) (otelcol_alert_firing{job="anvilcol-gateway"}) > 0`)
		for _, x := range s {
			procFiring[x.Metric["rule"]] = true
		}
	}
	for q, why := range failing {
		t.Errorf("%s\n    -> %s", q, why)
	}
	t.Logf("%d of %d dashboard queries and recording rules returned data", len(exprs)-len(failing), len(exprs))
	// The agent's durable path is healthy here: none of its alerts pages
	// (their counters are exposed at 0, so the rules evaluate over them).
	for _, r := range []string{"anvilcol_agent_refusing", "anvilcol_agent_dropped_data", "anvilcol_storage_damaged"} {
		if promFiring[r] {
			t.Errorf("alert %s fired on a healthy agent", r)
		}
	}
	for _, r := range rules {
		if !promFiring[r] {
			t.Errorf("alert %s never fired in Prometheus (firing: %v)", r, mapKeys(promFiring))
		}
		if !procFiring[r] {
			t.Errorf("rule %s never fired in the gateway's alert processor (firing: %v)", r, mapKeys(procFiring))
		}
	}
}

// Dashboards are Grafana 10+ JSON with a Prometheus data source variable that
// every panel and query uses, and the template variables the issue names.
func TestDeployDashboardsAreGrafanaJSON(t *testing.T) {
	root := e2etest.RepoRoot(t)
	wantVars := map[string][]string{
		"anvil-queue-health.json": {"datasource", "queue_id", "policy_type"},
		"anvilcol-pipeline.json":  {"datasource", "job", "instance"},
	}
	for file, vars := range wantVars {
		raw, err := os.ReadFile(filepath.Join(root, "deploy", "grafana", file))
		if err != nil {
			t.Fatal(err)
		}
		var d grafanaDashboard
		if err := json.Unmarshal(raw, &d); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if d.SchemaVersion < 38 || d.UID == "" || d.Title == "" {
			t.Errorf("%s: schemaVersion %d (want >= 38), uid %q, title %q", file, d.SchemaVersion, d.UID, d.Title)
		}
		got := map[string]grafanaVar{}
		for _, v := range d.Templating.List {
			got[v.Name] = v
		}
		for _, name := range vars {
			if _, ok := got[name]; !ok {
				t.Errorf("%s: template variable %q missing", file, name)
			}
		}
		if ds := got["datasource"]; ds.Type != "datasource" || ds.Query != "prometheus" {
			t.Errorf("%s: datasource variable is %q/%v, want type datasource, query prometheus", file, ds.Type, ds.Query)
		}
		ids := map[int]bool{}
		for _, p := range d.Panels {
			if ids[p.ID] {
				t.Errorf("%s: duplicate panel id %d", file, p.ID)
			}
			ids[p.ID] = true
			if p.Type == "row" {
				continue
			}
			if p.Datasource.UID != "${datasource}" || len(p.Targets) == 0 {
				t.Errorf("%s: panel %q: datasource %q, %d targets", file, p.Title, p.Datasource.UID, len(p.Targets))
			}
			for _, tg := range p.Targets {
				if tg.Datasource.UID != "${datasource}" || tg.Expr == "" {
					t.Errorf("%s: panel %q target %s: datasource %q, expr %q", file, p.Title, tg.RefID, tg.Datasource.UID, tg.Expr)
				}
			}
		}
	}
}

// deployLabelSubmits is the number of anvil.label.submit.stop events of one
// round (the sampling processor keeps about a tenth of their logs and spans).
const deployLabelSubmits = 42

// deployEvents is the shipped sample batch (every catalog metric, without
// its fixed times: receive time) plus what makes each ADR-008 alert fire, label
// submits for sampling to drop, and one invalid event.
func deployEvents(t *testing.T, root string, round int) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(root, "config", "examples", "anvil-events.json"))
	if err != nil {
		t.Fatal(err)
	}
	var batch struct {
		Resource map[string]any   `json:"resource"`
		Events   []map[string]any `json:"events"`
	}
	if err := json.Unmarshal(raw, &batch); err != nil {
		t.Fatal(err)
	}
	events := batch.Events[:0]
	for _, e := range batch.Events {
		delete(e, "time")
		delete(e, "time_unix_nano")
		if name, _ := e["name"].(string); name == "anvil.label.submit.stop" {
			continue // added below, deployLabelSubmits of them
		}
		events = append(events, e)
	}
	ev := func(name string, m map[string]any, md map[string]any) map[string]any {
		return map[string]any{"name": name, "measurements": m, "metadata": md}
	}
	for i := 0; i < deployLabelSubmits; i++ {
		events = append(events, ev("anvil.label.submit.stop", map[string]any{"duration": 30e6 + float64(i)*5e6, "time_on_task": 60e9 + float64(i)*10e9, "cost": 20},
			map[string]any{"queue_id": []string{"q-1", "q-2"}[i%2], "schema_version_id": "sv-3", "sample_type": "image", "labeler_id": fmt.Sprintf("u-%d", i), "assignment_id": fmt.Sprintf("a-%d-%d", round, i),
				"trace_id": fmt.Sprintf("%016x%016x", round+1, 0x9e3779b97f4a7c15*uint64(i+1)), "span_id": fmt.Sprintf("%016x", i+1)}))
	}
	for i := 0; i < 10; i++ { // dispatch_latency_p99: priority dispatches of 800 ms
		events = append(events, ev("anvil.assignment.dispatch.stop", map[string]any{"duration": 800e6},
			map[string]any{"queue_id": "q-2", "labeler_id": "u-1", "policy_type": "priority", "assignment_id": fmt.Sprintf("a-p%d-%d", round, i)}))
	}
	for i := 0; i < 3; i++ { // export_failures: 3 in the hour
		events = append(events, ev("anvil.export.generate.exception", map[string]any{"duration": 1e9},
			map[string]any{"export_id": fmt.Sprintf("e-f%d-%d", round, i), "queue_id": "q-1", "format": "csv", "kind": "error", "reason": "disk full", "stacktrace": "lib/anvil/export.ex:9"}))
	}
	events = append(events,
		// timeout_spike: 50 timeouts in one sweep.
		ev("anvil.assignment.timed_out", map[string]any{"count": 50}, map[string]any{"queue_id": "q-2", "requeued": true, "escalated": false}),
		// low_agreement: a score below 0.4 (the sample batch has 0.31 too).
		ev("anvil.agreement.low_score", map[string]any{"value": 0.2}, map[string]any{"sample_id": "s-9", "dimension": "class", "threshold": 0.6}),
		// An export that AITrace registers as an artifact (it needs queue_id).
		ev("anvil.export.completed", map[string]any{"row_count": 10}, map[string]any{"export_id": fmt.Sprintf("e-ok-%d", round), "queue_id": "q-1", "format": "jsonl"}),
		// AnvilCol.Forwarder's own report (the pipeline dashboard's forwarder panels).
		ev("anvil.forwarder.report", map[string]any{"sent": 60, "dropped": 1, "rejected": 1, "retries": 2, "buffered": 3}, map[string]any{"forwarder": "AnvilCol.Forwarder"}),
	)
	// Every event above is what a merging client sends (contract/events.json).
	c := contract.MustLoad()
	for _, e := range events {
		m, _ := e["measurements"].(map[string]any)
		md, _ := e["metadata"].(map[string]any)
		if problems := c.Check(contract.NameOf(e["name"]), m, md); len(problems) > 0 {
			t.Fatalf("deploy test event off the contract: %v", problems)
		}
	}
	events = append(events,
		// A client that does not merge a span's start metadata into its stop
		// event: accepted, counted in otelcol_receiver_anvil_events_missing_attribute.
		ev("anvil.policy.select_assignment.stop", map[string]any{"duration": 2e6}, map[string]any{"telemetry_span_context": "#Reference<0.1.2.3>"}),
		// Rejected (no name): otelcol_receiver_anvil_events_rejected.
		map[string]any{"measurements": map[string]any{}},
	)
	out, err := json.Marshal(map[string]any{"resource": batch.Resource, "events": events})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// cardinalityMetrics is what the cardinality guard of config/agent.yaml acts
// on, arriving over OTLP like opentelemetry-erlang's metrics: a labeler_id
// attribute (dropped) and more queues than max_series_per_metric (2000; the
// rest fold into the overflow series).
func cardinalityMetrics() pmetric.Metrics {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", "anvil")
	rm.Resource().Attributes().PutStr("service.instance.id", "anvil@node-1")
	m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName("anvil.e2e.queue.depth")
	g := m.SetEmptyGauge()
	now := pcommon.NewTimestampFromTime(time.Now())
	for i := 0; i < 2100; i++ {
		dp := g.DataPoints().AppendEmpty()
		dp.SetTimestamp(now)
		dp.SetDoubleValue(float64(i))
		dp.Attributes().PutStr("queue_id", fmt.Sprintf("q-%d", i))
		dp.Attributes().PutStr("labeler_id", fmt.Sprintf("u-%d", i))
	}
	return md
}

// startDeployPrometheus runs Prometheus at 1 s scrapes and evaluations with
// the rules files of pattern rules and the scrape config deploy/README.md
// documents for the gateways' prometheus exporters at targets (host:port):
// honor_labels keeps the writers' job/instance, anvilcol_replica names the
// gateway replica; extraJobs (YAML list items) are added as they are.
func startDeployPrometheus(t *testing.T, rules string, targets []string, extraJobs string) *e2etest.PrometheusServer {
	t.Helper()
	quoted := make([]string, len(targets))
	for i, x := range targets {
		quoted[i] = fmt.Sprintf("%q", x)
	}
	return e2etest.StartPrometheus(t, fmt.Sprintf(`
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - %s
scrape_configs:
  - job_name: anvilcol-gateway-exporter
    honor_labels: true
    static_configs:
      - targets: [%s]
    relabel_configs:
      - source_labels: [__address__]
        target_label: anvilcol_replica
%s`, rules, strings.Join(quoted, ", "), extraJobs))
}

// exporterTargets are the fleet gateways' prometheus exporter addresses.
func (f *fleet) exporterTargets() []string {
	var out []string
	for _, g := range f.gateways {
		out = append(out, fmt.Sprintf("%s:%d", g.listenHost, g.promPort))
	}
	return out
}

// dashboardPanel returns a lookup of the dashboard at path's queries by
// panel title and refId, Grafana variables substituted; an unknown panel
// fails the test.
func dashboardPanel(t *testing.T, path string) func(title, ref string) string {
	t.Helper()
	exprs := map[string]string{}
	for _, e := range dashboardExprs(t, path) {
		exprs[e.where[strings.Index(e.where, `"`):]] = substituteGrafana(e.expr)
	}
	return func(title, ref string) string {
		t.Helper()
		q, ok := exprs[fmt.Sprintf("%q %s", title, ref)]
		if !ok {
			t.Fatalf("panel %q %s not on %s", title, ref, filepath.Base(path))
		}
		return q
	}
}

// needsHistory tells whether a query (or the recording rule name with its
// expression) reads the day that ended an hour ago or the last day's full
// hours: no data in a Prometheus started minutes ago.
func needsHistory(name, expr string) bool {
	return strings.Contains(expr, "offset 1h") || strings.Contains(expr, ":1h]") || dayRule.MatchString(name) || dayRule.MatchString(expr)
}

// dayRule matches the name of a recording rule over a day (…1d, …24h_offset1h).
var dayRule = regexp.MustCompile(`:[a-z0-9_]*(1d|24h_offset1h)\b`)

type deployExpr struct{ where, expr string }

type grafanaRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type grafanaVar struct {
	Name  string `json:"name"`
	Type  string `json:"type"`
	Query any    `json:"query"`
}

type grafanaPanel struct {
	ID         int        `json:"id"`
	Type       string     `json:"type"`
	Title      string     `json:"title"`
	Datasource grafanaRef `json:"datasource"`
	Targets    []struct {
		RefID      string     `json:"refId"`
		Expr       string     `json:"expr"`
		Datasource grafanaRef `json:"datasource"`
	} `json:"targets"`
	Panels []grafanaPanel `json:"panels"` // a collapsed row's panels
}

type grafanaDashboard struct {
	UID           string         `json:"uid"`
	Title         string         `json:"title"`
	SchemaVersion int            `json:"schemaVersion"`
	Panels        []grafanaPanel `json:"panels"`
	Templating    struct {
		List []grafanaVar `json:"list"`
	} `json:"templating"`
}

// dashboardExprs returns every panel target's expr of a dashboard.
func dashboardExprs(t *testing.T, path string) []deployExpr {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var d grafanaDashboard
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var out []deployExpr
	var walk func([]grafanaPanel)
	walk = func(ps []grafanaPanel) {
		for _, p := range ps {
			for _, tg := range p.Targets {
				out = append(out, deployExpr{where: fmt.Sprintf("%s %q %s", filepath.Base(path), p.Title, tg.RefID), expr: tg.Expr})
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	return out
}

type promRule struct {
	Record string `yaml:"record"`
	Alert  string `yaml:"alert"`
	Expr   string `yaml:"expr"`
}

func ruleFile(t *testing.T, path string) []promRule {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Groups []struct {
			Rules []promRule `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(raw, &f); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var out []promRule
	for _, g := range f.Groups {
		out = append(out, g.Rules...)
	}
	return out
}

var grafanaVarRef = regexp.MustCompile(`\$\{?(\w+)\}?`)

// substituteGrafana replaces what Grafana would: interval variables by
// concrete durations, template variables (used as =~"$var") by "match all".
func substituteGrafana(expr string) string {
	return grafanaVarRef.ReplaceAllStringFunc(expr, func(m string) string {
		switch strings.Trim(m, "${}") {
		case "__rate_interval":
			return "1m"
		case "__interval":
			return "1m" // the heatmap's minimum interval
		case "__range":
			return "1h"
		default:
			return ".*"
		}
	})
}

func hasNumber(s []e2etest.PromSample) bool {
	for _, x := range s {
		if !math.IsNaN(x.Value) {
			return true
		}
	}
	return false
}

func mapKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
