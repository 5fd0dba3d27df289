//go:build e2e

package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/anvil/anvilcol/contract"
	"github.com/anvil/anvilcol/internal/e2etest"
)

// The fleet: Anvil nodes with an agent each (config/agent.yaml), a gateway
// tier of two replicas behind one DNS name (config/gateway.yaml), and the
// backends (Foundation, AITrace, an OTLP tracing backend, the gateways'
// Prometheus endpoints). Everything runs from the SHIPPED configs, set up
// through their environment variables only, over TLS with bearer tokens.

const (
	fleetGatewayName  = "gateway.anvilcol.test"
	fleetGatewayToken = "fleet-gateway-token"
)

type fleetGateway struct {
	opts       e2etest.Options
	c          *e2etest.Collector
	promPort   int
	telemetry  int
	listenHost string
}

type fleetAgent struct {
	name      string // ANVILCOL_NODE_NAME ("" = the machine's host name)
	identity  string // the service.instance.id its signals get without a client resource
	opts      e2etest.Options
	c         *e2etest.Collector
	anvil     int
	statsd    int
	otlpHTTP  int
	telemetry int
}

type fleet struct {
	t          *testing.T
	tls        e2etest.TLSFiles
	dns        *e2etest.DNSServer
	gateways   []*fleetGateway
	agents     []*fleetAgent
	foundation *e2etest.Intake
	aitrace    *e2etest.Intake
	tracing    *e2etest.OTLPSink
	grpcPort   int // the gateways' OTLP/gRPC port, on each replica's address

	mu         sync.Mutex
	registered map[string]int // AITrace: POSTs per Idempotency-Key (export id)
}

// newFleet starts the backends, two gateway replicas on 127.0.0.1 and
// 127.0.0.2 (one gRPC port, one DNS name resolving to both) and one agent per
// node name.
func newFleet(t *testing.T, nodes ...string) *fleet {
	return newFleetEnv(t, nil, nodes...)
}

// newFleetEnv is newFleet with gatewayEnv added to both replicas' environment.
func newFleetEnv(t *testing.T, gatewayEnv map[string]string, nodes ...string) *fleet {
	f := &fleet{t: t, registered: map[string]int{}}
	f.tls = e2etest.NewTLS(t, fleetGatewayName)
	f.dns = e2etest.NewDNSServer(t, fleetGatewayName, "127.0.0.1", "127.0.0.2")
	f.foundation = e2etest.NewIntake(t)
	// AITrace registers an artifact once per Idempotency-Key, as the real
	// service does; a repeated key is answered 200 without a second artifact.
	f.aitrace = e2etest.NewIntake(t)
	f.aitrace.Respond(func(r e2etest.Request) (int, http.Header, []byte) {
		if r.Path == "/v1/artifacts" {
			f.mu.Lock()
			f.registered[r.Header.Get("Idempotency-Key")]++
			f.mu.Unlock()
		}
		return http.StatusOK, nil, []byte("{}")
	})
	f.tracing = e2etest.NewOTLPSink(t)
	tracingAddr := f.tracing.ServeGRPC(t)

	f.grpcPort = e2etest.FreePort(t)
	for i, host := range []string{"127.0.0.1", "127.0.0.2"} {
		g := &fleetGateway{listenHost: host, promPort: e2etest.FreePort(t), telemetry: e2etest.FreePort(t)}
		health := e2etest.FreePort(t)
		g.opts = e2etest.Options{
			Config:     "config/gateway.yaml",
			HealthPort: health,
			HealthHost: host,
			Env: map[string]string{
				"ANVILCOL_LISTEN_HOST":         host,
				"ANVILCOL_OTLP_GRPC_PORT":      fmt.Sprint(f.grpcPort),
				"ANVILCOL_OTLP_HTTP_PORT":      fmt.Sprint(e2etest.FreePort(t)),
				"ANVILCOL_HEALTH_PORT":         fmt.Sprint(health),
				"ANVILCOL_PROMETHEUS_PORT":     fmt.Sprint(g.promPort),
				"ANVILCOL_TELEMETRY_PORT":      fmt.Sprint(g.telemetry),
				"ANVILCOL_GATEWAY_TOKEN":       fleetGatewayToken,
				"ANVILCOL_TLS_CERT_FILE":       f.tls.CertFile,
				"ANVILCOL_TLS_KEY_FILE":        f.tls.KeyFile,
				"ANVILCOL_STORAGE_DIR":         filepath.Join(t.TempDir(), fmt.Sprintf("gateway-%d", i)),
				"DD_API_KEY":                   "0123456789abcdef0123456789abcdef",
				"ANVILCOL_HOSTNAME":            fmt.Sprintf("gateway-%d", i),
				"ANVILCOL_TRACING_ENDPOINT":    tracingAddr,
				"ANVILCOL_TRACING_INSECURE":    "true",
				"ANVILCOL_FOUNDATION_ENDPOINT": f.foundation.URL,
				"ANVILCOL_FOUNDATION_TOKEN":    "f-token",
				"ANVILCOL_AITRACE_ENDPOINT":    f.aitrace.URL,
				"ANVILCOL_AITRACE_TOKEN":       "a-token",
			},
		}
		for k, v := range gatewayEnv {
			g.opts.Env[k] = v
		}
		started := time.Now()
		g.c = e2etest.Start(t, g.opts)
		t.Logf("gateway replica %s healthy after %v", host, time.Since(started).Round(time.Millisecond))
		f.gateways = append(f.gateways, g)
	}

	for _, node := range nodes {
		f.startAgent(t, node, nil)
	}
	return f
}

// stopAll stops every process of the fleet at once (defer it right after
// newFleet): a gateway's graceful stop waits for the datadog exporter, whose
// intake is unreachable here, for up to the harness's 30 s, and one by one
// that would add up.
func (f *fleet) stopAll() {
	var wg sync.WaitGroup
	for _, c := range append(f.agentCollectors(), f.gatewayCollectors()...) {
		wg.Add(1)
		go func() { defer wg.Done(); _ = c.Stop() }()
	}
	wg.Wait()
}

func (f *fleet) agentCollectors() (out []*e2etest.Collector) {
	for _, a := range f.agents {
		out = append(out, a.c)
	}
	return out
}

func (f *fleet) gatewayCollectors() (out []*e2etest.Collector) {
	for _, g := range f.gateways {
		out = append(out, g.c)
	}
	return out
}

// startAgent starts one more agent of node name node ("" = the machine's
// host name) on config/agent.yaml and the agent distribution; edit, when set, changes its environment.
func (f *fleet) startAgent(t *testing.T, node string, edit func(env map[string]string)) *fleetAgent {
	t.Helper()
	hostname, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	a := &fleetAgent{name: node, identity: node, anvil: e2etest.FreePort(t), statsd: e2etest.FreeUDPPort(t),
		otlpHTTP: e2etest.FreePort(t), telemetry: e2etest.FreePort(t)}
	if node == "" {
		a.identity = hostname
	}
	health := e2etest.FreePort(t)
	a.opts = e2etest.Options{
		Binary:     e2etest.AgentBinary(t),
		Config:     "config/agent.yaml",
		HealthPort: health,
		Env: map[string]string{
			"ANVILCOL_GATEWAY_ENDPOINT":       fmt.Sprintf("dns://%s/%s:%d", f.dns.Addr, fleetGatewayName, f.grpcPort),
			"ANVILCOL_GATEWAY_TOKEN":          fleetGatewayToken,
			"ANVILCOL_GATEWAY_CA_FILE":        f.tls.CAFile,
			"ANVILCOL_STORAGE_DIR":            filepath.Join(t.TempDir(), "agent-"+a.identity),
			"ANVILCOL_METRICS_FLUSH_INTERVAL": "1s",
			"ANVILCOL_ANVIL_PORT":             fmt.Sprint(a.anvil),
			"ANVILCOL_STATSD_PORT":            fmt.Sprint(a.statsd),
			"ANVILCOL_OTLP_HTTP_PORT":         fmt.Sprint(a.otlpHTTP),
			"ANVILCOL_OTLP_GRPC_PORT":         fmt.Sprint(e2etest.FreePort(t)),
			"ANVILCOL_HEALTH_PORT":            fmt.Sprint(health),
			"ANVILCOL_TELEMETRY_PORT":         fmt.Sprint(a.telemetry),
		},
	}
	if node != "" {
		a.opts.Env["ANVILCOL_NODE_NAME"] = node
	}
	if edit != nil {
		edit(a.opts.Env)
	}
	started := time.Now()
	a.c = e2etest.Start(t, a.opts)
	t.Logf("agent %s healthy after %v", a.identity, time.Since(started).Round(time.Millisecond))
	f.agents = append(f.agents, a)
	return a
}

// fleetEvent is one Anvil event in protocol v1.
type fleetEvent struct {
	Name         string         `json:"name"`
	TimeUnixNano int64          `json:"time_unix_nano"`
	Measurements map[string]any `json:"measurements"`
	Metadata     map[string]any `json:"metadata"`
}

// postEvents sends one batch to an agent's anvil receiver and reports whether
// it was acknowledged (200 with every event accepted). A refused connection
// (agent down) is not acknowledged.
func postEvents(t *testing.T, a *fleetAgent, resource map[string]string, events []fleetEvent) bool {
	t.Helper()
	body := map[string]any{"events": events}
	if resource != nil {
		body["resource"] = resource
	}
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Post(fmt.Sprintf("http://127.0.0.1:%d/v1/events", a.anvil), "application/json", bytes.NewReader(b))
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	var ans anvilAnswer
	if err := json.NewDecoder(resp.Body).Decode(&ans); err != nil {
		t.Fatalf("anvil receiver answer: %v", err)
	}
	if resp.StatusCode == http.StatusOK && ans.Rejected != 0 {
		t.Fatalf("anvil receiver rejected %d test events: %+v", ans.Rejected, ans.Errors)
	}
	return resp.StatusCode == http.StatusOK
}

// nodeMix is what one node sends, by path, with the totals a backend must show.
type nodeMix struct {
	labels, dispatches, exports int // anvil events
	statsdCount, statsdTimings  int // DogStatsD lines (and statsdCount label submits, named as the catalog's)
	otlpLogs, otlpJobs          int // OTLP log records; OTLP delta counter total
}

func exportID(node string, k int) string { return fmt.Sprintf("%s-exp-%03d", node, k) }

func (f *fleet) sendMix(t *testing.T, a *fleetAgent, resource map[string]string, m nodeMix) {
	t.Helper()
	now := time.Now().UnixNano()
	var evs []fleetEvent
	for k := 0; k < m.labels; k++ {
		evs = append(evs, fleetEvent{Name: "anvil.label.submit.stop", TimeUnixNano: now,
			Measurements: map[string]any{"duration": 20_000_000 + k},
			Metadata: map[string]any{"queue_id": "q1", "labeler_id": fmt.Sprintf("u-%d", k%7), "assignment_id": fmt.Sprintf("a-%d", k),
				"schema_version_id": "sv-1"}})
	}
	for k := 0; k < m.dispatches; k++ {
		evs = append(evs, fleetEvent{Name: "anvil.assignment.dispatch.stop", TimeUnixNano: now,
			Measurements: map[string]any{"duration": int64(k+1) * 3_000_000},
			Metadata:     map[string]any{"queue_id": "q1", "labeler_id": "u-1", "policy_type": "round_robin", "assignment_id": fmt.Sprintf("a-%d", k)}})
	}
	// One low score: the catalog's summary anvil.agreement.low_score.value,
	// a name StatsD sends too (below).
	evs = append(evs, fleetEvent{Name: "anvil.agreement.low_score", TimeUnixNano: now,
		Measurements: map[string]any{"value": 0.31}, Metadata: map[string]any{"sample_id": "s-1", "dimension": "bbox"}})
	for k := 0; k < m.exports; k++ {
		md := map[string]any{"export_id": exportID(a.identityFor(resource), k), "queue_id": "q1", "format": "jsonl"}
		evs = append(evs,
			fleetEvent{Name: "anvil.export.generate.stop", TimeUnixNano: now, Measurements: map[string]any{"duration": 9_000_000}, Metadata: md},
			fleetEvent{Name: "anvil.export.completed", TimeUnixNano: now, Measurements: map[string]any{"row_count": 100}, Metadata: md})
	}
	// As AnvilCol.Forwarder sends ADR-shaped spans: start keys merged in.
	c := contract.MustLoad()
	for _, ev := range evs {
		if p := c.Check(ev.Name, ev.Measurements, ev.Metadata); len(p) > 0 {
			t.Fatalf("fleet event off the contract: %v", p)
		}
	}
	if !postEvents(t, a, resource, evs) {
		t.Fatalf("agent %s did not acknowledge its events", a.identity)
	}

	// DogStatsD, as TelemetryMetricsStatsd (formatter: :datadog) sends it.
	conn, err := net.Dial("udp", fmt.Sprintf("127.0.0.1:%d", a.statsd))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for k := 0; k < m.statsdCount; k++ {
		fmt.Fprintf(conn, "anvil.jobs.processed:1|c|#queue_id:q1\n")
	}
	// Names the catalog has too, with another meaning or type: they must stay
	// apart (statsd_*) from the forwarder's.
	for k := 0; k < m.statsdCount; k++ {
		fmt.Fprintf(conn, "anvil.label.submit.count:1|c|#queue_id:q1\n")
	}
	fmt.Fprintf(conn, "anvil.agreement.low_score.value:0.3|g\n")
	for k := 0; k < m.statsdTimings; k++ {
		fmt.Fprintf(conn, "anvil.jobs.latency:%d|ms|#queue_id:q1\n", 5+k)
	}

	// OTLP from a worker that sends no service.instance.id: delta counter
	// points (one per job) and log records.
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", "anvil-worker")
	sum := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	sum.SetName("anvil.worker.jobs")
	s := sum.SetEmptySum()
	s.SetIsMonotonic(true)
	s.SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
	start := pcommon.NewTimestampFromTime(time.Now().Add(-time.Second))
	for k := 0; k < m.otlpJobs; k++ {
		dp := s.DataPoints().AppendEmpty()
		dp.SetStartTimestamp(start + pcommon.Timestamp(k))
		dp.SetTimestamp(start + pcommon.Timestamp(k+1))
		dp.SetIntValue(1)
		dp.Attributes().PutStr("queue_id", "q1")
	}
	e2etest.PostMetrics(t, fmt.Sprintf("http://127.0.0.1:%d", a.otlpHTTP), md)
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("service.name", "anvil-worker")
	for k := 0; k < m.otlpLogs; k++ {
		lr := rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
		lr.SetEventName("anvil.worker.job_done")
		lr.SetTimestamp(pcommon.NewTimestampFromTime(time.Now()))
		lr.Attributes().PutInt("seq", int64(k))
	}
	e2etest.PostLogs(t, fmt.Sprintf("http://127.0.0.1:%d", a.otlpHTTP), ld)
}

// identityFor is the service.instance.id of what a node sends with resource.
func (a *fleetAgent) identityFor(resource map[string]string) string {
	if id := resource["service.instance.id"]; id != "" {
		return id
	}
	return a.identity
}

// promCounts scrapes every gateway replica and returns, per metric family
// (anvil_*, and StatsD's statsd_anvil_*) and writer (instance label), the
// largest value any replica shows: counters' values and histograms' counts,
// summed over the other labels. (Agents send cumulative series, so each
// replica holds the latest total it received; the largest is the newest.)
func (f *fleet) promCounts(t *testing.T) map[string]map[string]float64 {
	t.Helper()
	out := map[string]map[string]float64{}
	for _, g := range f.gateways {
		fams, err := e2etest.Scrape(t, fmt.Sprintf("http://%s:%d/metrics", g.listenHost, g.promPort))
		if err != nil {
			continue // a replica that is down
		}
		perReplica := map[string]map[string]float64{}
		for name, fam := range fams {
			if !strings.HasPrefix(name, "anvil_") && !strings.HasPrefix(name, "statsd_anvil_") {
				continue
			}
			for _, m := range fam.GetMetric() {
				var v float64
				switch fam.GetType() {
				case dto.MetricType_COUNTER:
					v = m.GetCounter().GetValue()
				case dto.MetricType_HISTOGRAM:
					v = float64(m.GetHistogram().GetSampleCount())
				default:
					continue
				}
				inst := ""
				for _, l := range m.GetLabel() {
					if l.GetName() == "instance" {
						inst = l.GetValue()
					}
				}
				if perReplica[name] == nil {
					perReplica[name] = map[string]float64{}
				}
				perReplica[name][inst] += v
			}
		}
		for name, byInst := range perReplica {
			if out[name] == nil {
				out[name] = map[string]float64{}
			}
			for inst, v := range byInst {
				out[name][inst] = math.Max(out[name][inst], v)
			}
		}
	}
	return out
}

// foundationRecord is the part of a Foundation record the fleet test reads.
type foundationRecord struct {
	Name      string            `json:"metric_name"`
	Type      string            `json:"type"`
	Value     float64           `json:"value"`
	Count     float64           `json:"count"`
	Tags      map[string]string `json:"tags"`
	Timestamp int64             `json:"timestamp"`
}

// foundationTotals returns, per metric name and writer (service.instance.id
// tag), the total the records show: for each series (all tags), the newest
// cumulative value of every run of the series (a drop in value starts a new
// run: the writer restarted), added up; then summed over the series of the
// writer.
func (f *fleet) foundationTotals(t *testing.T) map[string]map[string]float64 {
	t.Helper()
	series := map[string][]foundationRecord{}
	for _, r := range f.foundation.RequestsTo("/v1/metrics") {
		var body struct {
			Metrics []foundationRecord `json:"metrics"`
		}
		if err := json.Unmarshal(r.Body, &body); err != nil {
			t.Fatalf("foundation body: %v", err)
		}
		for _, rec := range body.Metrics {
			if rec.Type != "counter" && rec.Type != "distribution" {
				continue
			}
			keys := make([]string, 0, len(rec.Tags))
			for k, v := range rec.Tags {
				keys = append(keys, k+"="+v)
			}
			sort.Strings(keys)
			id := rec.Name + "|" + strings.Join(keys, ",")
			series[id] = append(series[id], rec)
		}
	}
	out := map[string]map[string]float64{}
	for _, recs := range series {
		sort.SliceStable(recs, func(i, j int) bool { return recs[i].Timestamp < recs[j].Timestamp })
		total, last := 0.0, 0.0
		for _, rec := range recs {
			v := rec.Value
			if rec.Type == "distribution" {
				v = rec.Count
			}
			if v < last { // a new run after a restart of the writer
				total += last
			}
			last = v
		}
		total += last
		name, inst := recs[0].Name, recs[0].Tags["service.instance.id"]
		if out[name] == nil {
			out[name] = map[string]float64{}
		}
		out[name][inst] += total
	}
	return out
}

// tracingLogs counts, per writer and event name, the log records the tracing
// backend received, and the distinct values of attribute key among them.
func (f *fleet) tracingLogs(key string) (map[string]map[string]int, map[string]bool) {
	counts := map[string]map[string]int{}
	distinct := map[string]bool{}
	for _, ld := range f.tracing.Logs() {
		for i := 0; i < ld.ResourceLogs().Len(); i++ {
			rl := ld.ResourceLogs().At(i)
			inst, _ := rl.Resource().Attributes().Get("service.instance.id")
			for j := 0; j < rl.ScopeLogs().Len(); j++ {
				lrs := rl.ScopeLogs().At(j).LogRecords()
				for k := 0; k < lrs.Len(); k++ {
					lr := lrs.At(k)
					if counts[inst.AsString()] == nil {
						counts[inst.AsString()] = map[string]int{}
					}
					counts[inst.AsString()][lr.EventName()]++
					if v, ok := lr.Attributes().Get(key); ok {
						distinct[v.AsString()] = true
					}
				}
			}
		}
	}
	return counts, distinct
}

func (f *fleet) registeredExports() map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[string]int, len(f.registered))
	for k, v := range f.registered {
		out[k] = v
	}
	return out
}

// TestFleetKeepsWritersApartAndLosesNothing runs three agents (one per
// simulated Anvil node) against two gateway replicas over TLS + bearer token.
// Each node sends its own known mix through the anvil receiver, DogStatsD and
// OTLP; every backend must show each node as its own writer with exactly its
// counts. Then a gateway replica and an agent are killed -9 mid-stream and
// restarted: every acknowledged event log record and artifact still arrives,
// artifacts once each, and the metric loss stays within one flush interval.
func TestFleetKeepsWritersApartAndLosesNothing(t *testing.T) {
	f := newFleet(t, "node-a", "node-b", "")
	defer f.stopAll()
	nodeA, nodeB, nodeC := f.agents[0], f.agents[1], f.agents[2]
	// Node A's Anvil sends its Elixir node name (the forwarder's default
	// resource); B and C send no resource: their agent's identity applies.
	resA := map[string]string{"service.name": "anvil", "service.instance.id": "anvil@node-a"}
	mixes := []struct {
		a   *fleetAgent
		res map[string]string
		m   nodeMix
	}{
		{nodeA, resA, nodeMix{labels: 100, dispatches: 20, exports: 3, statsdCount: 30, statsdTimings: 10, otlpLogs: 5, otlpJobs: 7}},
		{nodeB, nil, nodeMix{labels: 60, dispatches: 12, exports: 2, statsdCount: 20, statsdTimings: 6, otlpLogs: 4, otlpJobs: 5}},
		{nodeC, nil, nodeMix{labels: 35, dispatches: 7, exports: 1, statsdCount: 10, statsdTimings: 4, otlpLogs: 3, otlpJobs: 3}},
	}
	for _, m := range mixes {
		f.sendMix(t, m.a, m.res, m.m)
	}

	// What every backend must show, per metric and writer.
	wantProm := map[string]map[string]float64{
		"anvil_label_submit_count_total":                  {},
		"anvil_assignment_dispatch_duration_milliseconds": {},
		"statsd_anvil_jobs_processed_total":               {},
		"statsd_anvil_label_submit_count_total":           {},
		"statsd_anvil_jobs_latency":                       {},
		"anvil_worker_jobs_total":                         {},
	}
	wantFoundation := map[string]map[string]float64{
		"anvil.label.submit.count":           {},
		"anvil.assignment.dispatch.duration": {},
		"statsd.anvil.jobs.processed":        {},
		"statsd.anvil.jobs.latency":          {},
		"anvil.worker.jobs":                  {},
	}
	wantExports := map[string]bool{}
	for _, m := range mixes {
		anvilID, agentID := m.a.identityFor(m.res), m.a.identity
		wantProm["anvil_label_submit_count_total"][anvilID] = float64(m.m.labels)
		wantProm["anvil_assignment_dispatch_duration_milliseconds"][anvilID] = float64(m.m.dispatches)
		wantProm["statsd_anvil_jobs_processed_total"][agentID] = float64(m.m.statsdCount)
		wantProm["statsd_anvil_label_submit_count_total"][agentID] = float64(m.m.statsdCount)
		wantProm["statsd_anvil_jobs_latency"][agentID] = float64(m.m.statsdTimings)
		wantProm["anvil_worker_jobs_total"][agentID] = float64(m.m.otlpJobs)
		wantFoundation["anvil.label.submit.count"][anvilID] = float64(m.m.labels)
		wantFoundation["anvil.assignment.dispatch.duration"][anvilID] = float64(m.m.dispatches)
		wantFoundation["statsd.anvil.jobs.processed"][agentID] = float64(m.m.statsdCount)
		wantFoundation["statsd.anvil.jobs.latency"][agentID] = float64(m.m.statsdTimings)
		wantFoundation["anvil.worker.jobs"][agentID] = float64(m.m.otlpJobs)
		for k := 0; k < m.m.exports; k++ {
			wantExports[exportID(anvilID, k)] = true
		}
	}
	if len(wantProm["anvil_label_submit_count_total"]) != 3 || len(wantProm["statsd_anvil_jobs_processed_total"]) != 3 {
		t.Fatalf("test setup: the three nodes must be three writers: %v", wantProm)
	}

	var gotProm, gotFoundation map[string]map[string]float64
	e2etest.Eventually(t, 90*time.Second, func() bool {
		gotProm, gotFoundation = f.promCounts(t), f.foundationTotals(t)
		return sameCounts(gotProm, wantProm) && sameCounts(gotFoundation, wantFoundation) &&
			len(f.registeredExports()) == len(wantExports)
	}, "per-writer totals at Prometheus and Foundation, and every export at AITrace:\n prometheus %v\n  want %v\n foundation %v\n  want %v\n aitrace %v",
		&gotProm, wantProm, &gotFoundation, wantFoundation, f.registered)
	// StatsD's metrics arrive only under `statsd.` names (config/agent.yaml,
	// transform/statsd: one source per metric name).
	for _, name := range []string{"anvil_jobs_processed_total", "anvil_jobs_latency"} {
		if gotProm[name] != nil {
			t.Errorf("Prometheus has the StatsD metric unprefixed: %s %v", name, gotProm[name])
		}
	}
	for _, name := range []string{"anvil.jobs.processed", "anvil.jobs.latency"} {
		if gotFoundation[name] != nil {
			t.Errorf("Foundation has the StatsD metric unprefixed: %s %v", name, gotFoundation[name])
		}
	}
	// StatsD's anvil.agreement.low_score.value (a gauge) beside the catalog's
	// summary of that name: each writer's series of both at the gateways
	// (each agent's metrics are on one replica), and no gateway logged a
	// name conflict while they were scraped.
	wantSummary, wantGauge := map[string]bool{}, map[string]bool{}
	for _, m := range mixes {
		wantSummary[m.a.identityFor(m.res)], wantGauge[m.a.identity] = true, true
	}
	writers := func(name string, typ dto.MetricType) map[string]bool {
		out := map[string]bool{}
		for _, fams := range f.gatewayMetrics(t, name) {
			for _, fam := range fams {
				if fam.GetName() != name || fam.GetType() != typ {
					continue
				}
				for _, m := range fam.GetMetric() {
					for _, l := range m.GetLabel() {
						if l.GetName() == "instance" {
							out[l.GetValue()] = true
						}
					}
				}
			}
		}
		return out
	}
	var gotSummary, gotGauge map[string]bool
	e2etest.Eventually(t, 30*time.Second, func() bool {
		gotSummary = writers("anvil_agreement_low_score_value", dto.MetricType_SUMMARY)
		gotGauge = writers("statsd_anvil_agreement_low_score_value", dto.MetricType_GAUGE)
		return maps.Equal(gotSummary, wantSummary) && maps.Equal(gotGauge, wantGauge)
	}, "writers of the catalog's low-score summary %v (want %v) and of StatsD's gauge %v (want %v)",
		&gotSummary, wantSummary, &gotGauge, wantGauge)
	for i, g := range f.gateways {
		for _, msg := range prometheusConflictLogs {
			if strings.Contains(g.c.Output(), msg) {
				t.Errorf("gateway %d logged %q: two sources share a metric name", i, msg)
			}
		}
	}
	for id := range f.registeredExports() {
		if !wantExports[id] {
			t.Errorf("AITrace registered %q, which no node exported", id)
		}
	}
	// Event logs at the tracing backend, per writer: the export events (kept
	// 100% by the agents' sampling) and the OTLP records.
	e2etest.Eventually(t, 30*time.Second, func() bool {
		counts, _ := f.tracingLogs("seq")
		for _, m := range mixes {
			c := counts[m.a.identityFor(m.res)]
			if c["anvil.export.completed"] != m.m.exports || c["anvil.export.generate.stop"] != m.m.exports ||
				counts[m.a.identity]["anvil.worker.job_done"] != m.m.otlpLogs {
				return false
			}
		}
		return true
	}, "every node's export and OTLP event logs at the tracing backend, under its own identity")

	t.Run("kill -9 of a gateway replica and of an agent mid-stream", func(t *testing.T) {
		f.killMidStream(t, nodeB, float64(mixes[1].m.labels))
	})
}

// sameCounts reports whether got has exactly want's writers with want's values
// for every metric of want.
func sameCounts(got, want map[string]map[string]float64) bool {
	for name, w := range want {
		g := got[name]
		if len(g) != len(w) {
			return false
		}
		for inst, v := range w {
			if g[inst] != v {
				return false
			}
		}
	}
	return true
}

// killMidStream streams batches into node's agent, kills -9 gateway replica 0
// (and restarts it on its storage), then kills -9 the agent right after a 200
// (and restarts it on its storage), and checks what arrives.
func (f *fleet) killMidStream(t *testing.T, node *fleetAgent, labelsBefore float64) {
	const batches, labelsPerBatch = 60, 5
	type ack struct {
		at     time.Time
		export string
	}
	var acked []ack
	var agentKilledAt time.Time
	seq := 0
	for b := 0; b < batches; b++ {
		switch b {
		case 15:
			f.gateways[0].c.Kill()
		case 25:
			f.gateways[0].c = e2etest.Start(t, f.gateways[0].opts)
		case 40:
			node.c.Kill()
			agentKilledAt = time.Now()
			node.c = e2etest.Start(t, node.opts)
		}
		id := fmt.Sprintf("%s-stream-%03d", node.identity, b)
		now := time.Now().UnixNano()
		var evs []fleetEvent
		for k := 0; k < labelsPerBatch; k++ {
			evs = append(evs, fleetEvent{Name: "anvil.label.submit.stop", TimeUnixNano: now,
				Measurements: map[string]any{"duration": 10_000_000}, Metadata: map[string]any{"queue_id": "q1", "seq": seq}})
			seq++
		}
		md := map[string]any{"export_id": id, "queue_id": "q1", "format": "csv"}
		evs = append(evs,
			fleetEvent{Name: "anvil.export.generate.stop", TimeUnixNano: now, Measurements: map[string]any{"duration": 1_000_000}, Metadata: md},
			fleetEvent{Name: "anvil.export.completed", TimeUnixNano: now, Measurements: map[string]any{"row_count": 10}, Metadata: md})
		// A client retries until the agent acknowledges; only a 200 counts.
		deadline := time.Now().Add(30 * time.Second)
		for !postEvents(t, node, nil, evs) {
			if time.Now().After(deadline) {
				t.Fatalf("batch %d never acknowledged", b)
			}
			time.Sleep(100 * time.Millisecond) // pacing: the client's retry interval, not a wait for an outcome
		}
		acked = append(acked, ack{at: time.Now(), export: id})
		time.Sleep(50 * time.Millisecond) // pacing: the stream's rate (~20 batches/s), which the loss bound is stated in
	}

	// Every acknowledged artifact arrives, registered once (AITrace's
	// Idempotency-Key), and every acknowledged export event log record too.
	e2etest.Eventually(t, 90*time.Second, func() bool {
		reg := f.registeredExports()
		for _, a := range acked {
			if reg[a.export] == 0 {
				return false
			}
		}
		counts, _ := f.tracingLogs("export_id")
		return counts[node.identity]["anvil.export.completed"] >= len(acked)+2 &&
			counts[node.identity]["anvil.export.generate.stop"] >= len(acked)+2
	}, "every acknowledged artifact and export event log record after kill -9 of a gateway and of the agent")
	_, ids := f.tracingLogs("export_id")
	for _, a := range acked {
		if !ids[a.export] {
			t.Errorf("acknowledged export %s has no event log record at the tracing backend", a.export)
		}
	}
	reg := f.registeredExports()
	dupPosts := 0
	for _, a := range acked {
		dupPosts += reg[a.export] - 1
	}
	t.Logf("artifacts: %d acknowledged, %d registered once each (%d repeated POSTs deduplicated by Idempotency-Key)", len(acked), len(acked), dupPosts)

	// Metrics: the receiver aggregates in memory for one flush interval (1s
	// here); kill -9 may lose at most the label submits acknowledged in the
	// interval in progress.
	window := 0
	for _, a := range acked {
		if a.at.Before(agentKilledAt) && a.at.After(agentKilledAt.Add(-1250*time.Millisecond)) {
			window += labelsPerBatch
		}
	}
	want := labelsBefore + float64(labelsPerBatch*len(acked))
	var got float64
	deadline := time.Now().Add(60 * time.Second)
	for {
		got = f.foundationTotals(t)["anvil.label.submit.count"][node.identity]
		if got >= want-float64(window) && got <= want {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("label submits of %s at Foundation: got %v, want %v minus at most %d (one flush interval)", node.identity, got, want, window)
		}
		time.Sleep(500 * time.Millisecond) // polling the backend
	}
	t.Logf("metrics: %v of %v label submits counted at Foundation after kill -9 of the agent (lost %v; bound %d = one 1s flush interval)", got, want, want-got, window)
}

// TestFleetExampleEventsReachEveryBackend posts the README's sample batch
// (config/examples/anvil-events.json) through an agent and the gateway tier:
// it gives metrics, event logs, spans and exactly one AITrace artifact (e-1,
// the one finished export; e-2 failed).
func TestFleetExampleEventsReachEveryBackend(t *testing.T) {
	f := newFleet(t, "node-x")
	defer f.stopAll()
	body, err := os.ReadFile(filepath.Join(e2etest.RepoRoot(t), "config", "examples", "anvil-events.json"))
	if err != nil {
		t.Fatal(err)
	}
	e2etest.Post(t, fmt.Sprintf("http://127.0.0.1:%d/v1/events", f.agents[0].anvil), "application/json", body)
	var prom map[string]map[string]float64
	e2etest.Eventually(t, 60*time.Second, func() bool {
		prom = f.promCounts(t)
		reg := f.registeredExports()
		counts, _ := f.tracingLogs("export_id")
		return prom["anvil_label_submit_count_total"]["anvil@node-1"] == 2 &&
			len(reg) == 1 && reg["e-1"] >= 1 &&
			counts["anvil@node-1"]["anvil.export.completed"] == 1 && f.tracing.SpanCount() > 0
	}, "the sample batch as metrics (prometheus %v), artifacts (%v), event logs and spans", &prom, f.registered)
}

// TestFleetHopRefusesWrongTokenAndUntrustedGateway: the agent-to-gateway hop
// is TLS with a verified certificate and a bearer token. An agent with the
// wrong token is refused; an agent that does not trust the gateway's
// certificate never sends; neither delivers anything.
func TestFleetHopRefusesWrongTokenAndUntrustedGateway(t *testing.T) {
	f := newFleet(t)
	defer f.stopAll()
	other := e2etest.NewTLS(t, fleetGatewayName) // a CA that did not sign the gateways' certificate
	wrongToken := f.startAgent(t, "node-wrong-token", func(env map[string]string) { env["ANVILCOL_GATEWAY_TOKEN"] = "not-the-token" })
	untrusted := f.startAgent(t, "node-untrusted", func(env map[string]string) { env["ANVILCOL_GATEWAY_CA_FILE"] = other.CAFile })
	for _, a := range []*fleetAgent{wrongToken, untrusted} {
		ld := plog.NewLogs()
		lr := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
		lr.SetEventName("anvil.auth.login_failed")
		e2etest.PostLogs(t, fmt.Sprintf("http://127.0.0.1:%d", a.otlpHTTP), ld)
	}
	e2etest.Eventually(t, 30*time.Second, func() bool {
		return strings.Contains(wrongToken.c.Output(), "Unauthenticated") &&
			strings.Contains(untrusted.c.Output(), "certificate signed by unknown authority")
	}, "the gateway refusing the wrong token, and the agent refusing the untrusted certificate")
	counts, _ := f.tracingLogs("")
	for _, a := range []*fleetAgent{wrongToken, untrusted} {
		if n := counts[a.identity]["anvil.auth.login_failed"]; n != 0 {
			t.Errorf("%s delivered %d records through a hop it must not use", a.identity, n)
		}
	}
}
