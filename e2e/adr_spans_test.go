//go:build e2e

package e2e

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/anvil/anvilcol/internal/e2etest"
)

// adrSpansPerNode is how many rounds of ADR-shaped spans each node emits
// (clients/elixir/e2e/driver.exs, `spans`).
const adrSpansPerNode = 30

// gatewayMetrics returns, per replica, the metric families of the gateways'
// Prometheus exporters whose name starts with prefix.
func (f *fleet) gatewayMetrics(t *testing.T, prefix string) [][]*dto.MetricFamily {
	t.Helper()
	var out [][]*dto.MetricFamily
	for _, g := range f.gateways {
		fams, err := e2etest.Scrape(t, fmt.Sprintf("http://%s:%d/metrics", g.listenHost, g.promPort))
		if err != nil {
			continue
		}
		var mine []*dto.MetricFamily
		for name, fam := range fams {
			if strings.HasPrefix(name, prefix) {
				mine = append(mine, fam)
			}
		}
		out = append(out, mine)
	}
	return out
}

// gatewayValue is the largest, over the gateway replicas, of the sum of the
// counter values (histogram counts) of the family named by prefix whose
// series carry labels and, for every key of present, a non-empty value.
// Agents keep their metrics on one replica (pick_first), so the largest is
// the writer's total.
func (f *fleet) gatewayValue(t *testing.T, prefix string, labels map[string]string, present ...string) float64 {
	t.Helper()
	best := -1.0
	for _, fams := range f.gatewayMetrics(t, prefix) {
		sum, found := 0.0, false
		for _, fam := range fams {
			if fam.GetName() != prefix && fam.GetName() != prefix+"_total" && !strings.HasPrefix(fam.GetName(), prefix+"_") {
				continue
			}
			for _, m := range fam.GetMetric() {
				if !e2etest.HasLabels(m, labels) || !hasNonEmpty(m, present) {
					continue
				}
				found = true
				switch fam.GetType() {
				case dto.MetricType_COUNTER:
					sum += m.GetCounter().GetValue()
				case dto.MetricType_HISTOGRAM:
					sum += float64(m.GetHistogram().GetSampleCount())
				case dto.MetricType_GAUGE:
					sum += m.GetGauge().GetValue()
				}
			}
		}
		if found && sum > best {
			best = sum
		}
	}
	return best
}

func hasNonEmpty(m *dto.Metric, keys []string) bool {
	for _, k := range keys {
		ok := false
		for _, l := range m.GetLabel() {
			if l.GetName() == k && l.GetValue() != "" {
				ok = true
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// TestADRSpansThroughTheForwarderGetEveryBreakdown is Anvil instrumented as
// ADR-008 writes it: :telemetry.span/3 (the test double with telemetry.erl's
// semantics) with the breakdown keys in the START metadata, so the stop
// events carry only what the functions returned. Two BEAMs started without
// a node name (both `nonode@nohost`) each run AnvilCol.Forwarder attached by
// its catalog, through their own agent (config/agent.yaml) into the gateway
// tier (config/gateway.yaml). At the backends:
//   - every catalog breakdown has its label (queue_id on label submits,
//     format on export durations, policy_type on policy selections and
//     dispatches, queue_id on dispatch exceptions), counted right;
//   - the two unnamed nodes are two writers (the agents' node names);
//   - every finished export registers exactly one AITrace artifact;
//   - spans carry the start keys;
//   - the forwarder's own report is a series per node;
//   - nothing the forwarder sent lacks a tagged key (the agent's
//     otelcol_receiver_anvil_events_missing_attribute stays empty), while a
//     non-merging client's stop event is counted there;
//   - a StatsD counter sent from three sockets (TelemetryMetricsStatsd's
//     pool_size) counts every datagram.
func TestADRSpansThroughTheForwarderGetEveryBreakdown(t *testing.T) {
	f := newFleet(t, "node-a", "node-b")
	defer f.stopAll()
	n := adrSpansPerNode

	for _, ag := range f.agents {
		d := startElixirDriver(t)
		d.do("start fw http://127.0.0.1:%d 100 noinstance", ag.anvil)
		d.do("spans fw %d %s", n, ag.name)
		if a := d.do("flush fw 60000"); a != "ok" {
			t.Fatalf("forwarder to %s: flush: %s", ag.name, a)
		}
		if s := d.stats("fw"); s.sent == 0 || s.dropped != 0 || s.rejected != 0 {
			t.Fatalf("forwarder to %s: %+v", ag.name, s)
		}
	}

	// A client that does not merge a span's start metadata into its stop
	// event: accepted, its series lacks queue_id, and it is counted.
	a := f.agents[0]
	if !postEvents(t, a, map[string]string{"service.instance.id": "raw-client"}, []fleetEvent{{
		Name: "anvil.label.submit.stop", TimeUnixNano: time.Now().UnixNano(),
		Measurements: map[string]any{"duration": 1_000_000},
		Metadata:     map[string]any{"schema_version_id": "sv-1", "telemetry_span_context": "#Reference<0.1.2.3>"},
	}}) {
		t.Fatal("the non-merging event was not acknowledged")
	}

	// StatsD from three sockets (three source ports) to node-a's agent.
	for s := 0; s < 3; s++ {
		conn, err := net.Dial("udp", fmt.Sprintf("127.0.0.1:%d", a.statsd))
		if err != nil {
			t.Fatal(err)
		}
		for k := 0; k < 4; k++ {
			fmt.Fprintf(conn, "anvil.e2e.pool:1|c|#queue_id:q1\n")
		}
		conn.Close()
	}

	want := func(what string, got func() float64, v float64) {
		t.Helper()
		last := got()
		for deadline := time.Now().Add(60 * time.Second); last < v && time.Now().Before(deadline); last = got() {
			time.Sleep(200 * time.Millisecond) // polling the backends
		}
		if last < v {
			t.Fatalf("%s = %v after 60 s, want %v", what, last, v)
		}
		// Read once more: above the wanted value is a duplicate.
		if last = got(); last != v {
			t.Errorf("%s = %v, want exactly %v", what, last, v)
		}
	}
	for _, ag := range f.agents {
		inst := map[string]string{"instance": ag.name}
		want(ag.name+": label submits with queue_id", func() float64 {
			return f.gatewayValue(t, "anvil_label_submit_count", inst, "queue_id", "schema_version_id")
		}, float64(n))
		want(ag.name+": label submit durations with queue_id", func() float64 {
			return f.gatewayValue(t, "anvil_label_submit_duration_milliseconds", inst, "queue_id")
		}, float64(n))
		want(ag.name+": export durations with format", func() float64 {
			return f.gatewayValue(t, "anvil_export_generate_duration_seconds", inst, "format")
		}, float64(n))
		want(ag.name+": policy selections with policy_type", func() float64 {
			return f.gatewayValue(t, "anvil_policy_select_assignment_duration_milliseconds", inst, "policy_type")
		}, float64(n))
		want(ag.name+": dispatch durations with policy_type", func() float64 {
			return f.gatewayValue(t, "anvil_assignment_dispatch_duration_milliseconds", inst, "policy_type")
		}, float64(n))
		want(ag.name+": dispatch exceptions with queue_id", func() float64 {
			return f.gatewayValue(t, "anvil_assignment_dispatch_exception_count", inst, "queue_id")
		}, 1)
		// The forwarder's own report: a series per node, nothing dropped.
		e2etest.Eventually(t, 60*time.Second, func() bool {
			return f.gatewayValue(t, "anvil_forwarder_sent", inst, "forwarder") > 0
		}, "%s: anvil_forwarder_sent_total at the gateway", ag.name)
		if v := f.gatewayValue(t, "anvil_forwarder_dropped", inst); v > 0 {
			t.Errorf("%s: anvil_forwarder_dropped_total = %v", ag.name, v)
		}
	}
	want("node-a: StatsD counter from three sockets", func() float64 {
		return f.gatewayValue(t, "statsd_anvil_e2e_pool", map[string]string{"instance": "node-a"})
	}, 12)
	want("the non-merging client's label submit, without queue_id", func() float64 {
		return f.gatewayValue(t, "anvil_label_submit_count", map[string]string{"instance": "raw-client", "queue_id": ""})
	}, 1)
	for _, fams := range f.gatewayMetrics(t, "anvil_") {
		for _, fam := range fams {
			for _, m := range fam.GetMetric() {
				if e2etest.HasLabels(m, map[string]string{"instance": "nonode@nohost"}) {
					t.Errorf("%s{%s}: an unnamed node claimed nonode@nohost", fam.GetName(), e2etest.Labels(m))
				}
			}
		}
	}

	// Missing keys: only the non-merging client's event, on node-a's agent.
	missing := func(ag *fleetAgent) float64 {
		return counterSum(t, fmt.Sprintf("http://127.0.0.1:%d/metrics", ag.telemetry), "otelcol_receiver_anvil_events_missing_attribute", nil)
	}
	want("node-a: events missing queue_id", func() float64 {
		return counterSum(t, fmt.Sprintf("http://127.0.0.1:%d/metrics", a.telemetry), "otelcol_receiver_anvil_events_missing_attribute",
			map[string]string{"event": "anvil.label.submit.stop", "attribute": "queue_id"})
	}, 1)
	if v := missing(f.agents[0]); v != 1 {
		t.Errorf("node-a: otelcol_receiver_anvil_events_missing_attribute sums to %v, want 1 (the forwarder's events lack nothing)", v)
	}
	if v := missing(f.agents[1]); v > 0 {
		t.Errorf("node-b: otelcol_receiver_anvil_events_missing_attribute = %v, want none: the forwarder merges every start key", v)
	}

	// AITrace: every finished export once.
	var reg map[string]int
	e2etest.Eventually(t, 60*time.Second, func() bool { reg = f.registeredExports(); return len(reg) >= 2*n },
		"%d artifacts registered", 2*n)
	for id, k := range f.registeredExports() {
		if k != 1 {
			t.Errorf("artifact %s registered %d times", id, k)
		}
	}
	if len(reg) != 2*n {
		t.Errorf("%d artifacts registered, want %d: %v", len(reg), 2*n, reg)
	}

	// Spans at the tracing backend carry the start keys: every dispatch
	// (not sampled), and every label submit the sampler kept.
	var dispatches, submits int
	for _, td := range f.tracing.Traces() {
		for _, rs := range td.ResourceSpans().All() {
			if id, _ := rs.Resource().Attributes().Get("service.instance.id"); id.Str() == "raw-client" {
				continue // the non-merging client above: it lacks the start keys on purpose
			}
			for _, ss := range rs.ScopeSpans().All() {
				for _, sp := range ss.Spans().All() {
					var keys []string
					switch sp.Name() {
					case "anvil.assignment.dispatch":
						dispatches++
						keys = []string{"queue_id", "labeler_id"}
						if sp.Status().Message() == "" {
							keys = append(keys, "policy_type", "assignment_id")
						}
					case "anvil.label.submit":
						submits++
						keys = []string{"queue_id", "labeler_id", "assignment_id", "schema_version_id"}
					}
					for _, k := range keys {
						if _, ok := sp.Attributes().Get(k); !ok {
							t.Errorf("span %s lacks %s: %v", sp.Name(), k, sp.Attributes().AsRaw())
						}
					}
				}
			}
		}
	}
	if dispatches < 2*(n+1) {
		t.Errorf("%d dispatch spans at the tracing backend, want %d", dispatches, 2*(n+1))
	}
	t.Logf("spans checked: %d dispatches, %d label submits (sampled)", dispatches, submits)
}
