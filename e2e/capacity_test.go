//go:build e2e

package e2e

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/anvil/anvilcol/internal/e2etest"
)

// TestQueueActivityThroughTheForwarderOnARealPrometheus: what an operator
// sees in the queue activity table, fed as Anvil feeds it: the forwarder's
// pollers (`pollers:`, a query of Anvil's database every poll_interval_ms)
// emit the queue gauges, ADR-shaped dispatch spans (queue_id in the start
// metadata, policy_type returned) and submit spans returning time on task
// and cost (the 3-tuple form of :telemetry.span/3, sample_type in the start
// metadata) go through AnvilCol.Forwarder, config/agent.yaml and
// config/gateway.yaml into a real Prometheus with the shipped rules; each
// column of the table that needs less than a day of history, and the time
// on task panel, read the expected values; a poller's new reading replaces
// the old one.
func TestQueueActivityThroughTheForwarderOnARealPrometheus(t *testing.T) {
	root := e2etest.RepoRoot(t)
	f := newFleetEnv(t, map[string]string{"ANVILCOL_ZERO_HOLD": "20s"}) // 1 s scrapes + the rules' 15 s steps
	defer f.stopAll()
	agent := f.startAgent(t, "node-1", nil)
	targets := f.exporterTargets()
	prom := startDeployPrometheus(t, filepath.Join(root, "deploy", "prometheus", "anvil-rules.yaml"), targets, "")

	d := startElixirDriver(t)
	d.do("queue q-1 7 42")
	d.do("start fw http://127.0.0.1:%d 200 noinstance report=1000 pollers=1000", agent.anvil)
	// q-1: 15 dispatches at once and 5 that take 150 ms (round_robin); 6
	// image labels 90 s on task costing 25, 4 video labels 600 s costing
	// 40; 2 validation failures. q-2: 4 fast dispatches (priority).
	d.do("dispatches q-1 round_robin 15 5")
	d.do("dispatches q-2 priority 4 0")
	d.do("work q-1 image 6 90 25")
	d.do("work q-1 video 4 600 40")
	d.do("submits q-1 0 0 2")
	if a := d.do("flush fw 30000"); a != "ok" {
		t.Fatalf("flush: %s", a)
	}

	panel := dashboardPanel(t, filepath.Join(root, "deploy", "grafana", "anvil-queue-health.json"))
	type check struct {
		title, ref, matchers string
		want                 float64
	}
	const table = "Queue activity"
	checks := []check{
		{table, "A", `queue_id="q-1"`, 42},  // pending assignments (the pollers)
		{table, "B", `queue_id="q-1"`, 7},   // active labelers (the pollers)
		{table, "D", `queue_id="q-1"`, 244}, // dispatch p99: rank 19.8 of 20, 15 in le=10, 5 in (100, 250]
		{table, "D", `queue_id="q-2"`, 9.9}, // all 4 in (0, 10]
		{table, "E", `queue_id="q-1"`, 0.75},
		{table, "E", `queue_id="q-2"`, 1},
		{table, "H", `queue_id="q-1"`, 2.0 / 12}, // 2 failures of 12 attempts
		{"Time on task p50 / p90 by sample type", "A", `queue_id="q-1",sample_type="image"`, 90},
		{"Time on task p50 / p90 by sample type", "A", `queue_id="q-1",sample_type="video"`, 450},
		{"Time on task p50 / p90 by sample type", "B", `queue_id="q-1",sample_type="video"`, 570},
	}
	var problems []string
	holds := func(cs []check) func() bool {
		return func() bool {
			at := time.Now().Add(-2 * time.Second).Truncate(15 * time.Second)
			problems = problems[:0]
			for _, c := range cs {
				got, err := valueAt(prom, panel(c.title, c.ref), c.matchers, at)
				if err != nil || !near(got, c.want, 1e-9) {
					problems = append(problems, fmt.Sprintf("%s %s {%s} = %v (%v), want %v", c.title, c.ref, c.matchers, got, err, c.want))
				}
			}
			return len(problems) == 0
		}
	}
	e2etest.Eventually(t, 2*time.Minute, holds(checks), "the queue activity table: %v", &problems)

	// Anvil's database changes; the next poll says so, the table follows.
	d.do("queue q-1 9 40")
	e2etest.Eventually(t, time.Minute, holds([]check{{table, "A", `queue_id="q-1"`, 40}, {table, "B", `queue_id="q-1"`, 9}}),
		"the table after the pollers' new reading: %v", &problems)
	if c := d.do("counters fw"); !strings.Contains(c, "polls_failed=0") {
		t.Errorf("forwarder counters %s: want no failed poll", c)
	}
}
