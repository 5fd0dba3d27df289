//go:build e2e

package e2e

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/anvil/anvilcol/internal/e2etest"
)

// Label quality at a test's time scale: the shipped rules of
// deploy/prometheus/anvil-rules.yaml with their windows shortened (the
// expressions unchanged), and the gateway's alert processor with the same
// windows through config/gateway.yaml's environment. An hour is 20 s here, the
// baseline's day 80 s, its offset 20 s, and a group must have existed 100 s
// ago (25h in the shipped rules).
var qualityScale = []struct{ from, to string }{
	{"[1h:15s]", "[20s:1s]"},
	{"[86399s:1h] offset 1h", "[79s:20s] offset 20s"},
	{"[5m] offset 25h", "[5s] offset 100s"},
}

var qualityGatewayEnv = map[string]string{
	"ANVILCOL_ALERT_QUALITY_WINDOW":          "20s",
	"ANVILCOL_ALERT_QUALITY_BASELINE_WINDOW": "80s",
	"ANVILCOL_ALERT_QUALITY_BASELINE_OFFSET": "20s",
	"ANVILCOL_ALERT_EVALUATION_INTERVAL":     "1s",
	"ANVILCOL_ZERO_HOLD":                     "20s", // 1 s scrapes + the dashboards' 15 s steps
}

// TestQualityThroughTheForwarderOnARealPrometheus: ADR-shaped agreement
// spans (the score returned by :telemetry.span/3's 3-tuple), per-labeler
// scores, submits that raise and validation failures, through
// AnvilCol.Forwarder, config/agent.yaml and config/gateway.yaml into a real
// Prometheus with the quality rules. Two queues score 0.75 steadily for two
// baseline spans; then q-drop's scores fall to 0.5: agreement_drop fires for
// q-drop, from Prometheus and from the gateway's alert processor alike, and
// never for q-steady. The new panels read the expected values.
func TestQualityThroughTheForwarderOnARealPrometheus(t *testing.T) {
	root := e2etest.RepoRoot(t)
	f := newFleetEnv(t, qualityGatewayEnv)
	defer f.stopAll()
	agent := f.startAgent(t, "node-1", nil)

	raw, err := os.ReadFile(filepath.Join(root, "deploy", "prometheus", "anvil-rules.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	rules := string(raw)
	for _, s := range qualityScale {
		if !strings.Contains(rules, s.from) {
			t.Fatalf("the shipped rules have no %q any more: update qualityScale", s.from)
		}
		rules = strings.ReplaceAll(rules, s.from, s.to)
	}
	rulesFile := filepath.Join(t.TempDir(), "anvil-rules.yaml")
	if err := os.WriteFile(rulesFile, []byte(rules), 0o600); err != nil {
		t.Fatal(err)
	}
	targets := f.exporterTargets()
	prom := startDeployPrometheus(t, rulesFile, targets, "")

	d := startElixirDriver(t)
	d.do("start fw http://127.0.0.1:%d 200 noinstance report=1000", agent.anvil)

	// Labelers (the 5 lowest of q-1 are the table's), submits and scores for
	// the panels' known values.
	labelers := map[string]string{"u-1": "0.9", "u-2": "0.4", "u-3": "0.6", "u-4": "0.35", "u-5": "0.7", "u-6": "0.55"}
	for l, s := range labelers {
		d.do("labeler %s q-1 %s", l, s)
	}
	scores := 0

	// Two scores a second per queue: steady, then q-drop falls.
	const steadyFor = 130 * time.Second
	started := time.Now()
	var dropAt time.Time
	promFired, procFired := false, false
	steadyFired := ""
	deadline := started.Add(steadyFor + 90*time.Second)
	for time.Now().Before(deadline) && !(promFired && procFired) {
		drop := "0.75"
		if time.Since(started) > steadyFor {
			drop = "0.5"
			if dropAt.IsZero() {
				dropAt = time.Now()
				t.Logf("q-drop falls to 0.5 after %v", time.Since(started).Round(time.Second))
			}
		}
		d.do("scores q-drop bbox %s 2", drop)
		d.do("scores q-steady bbox 0.75 2")
		// Steady streams for the ratio panels: three quarters of q-low's
		// scores below 0.4; one in 4 of q-v's attempts failing validation
		// (3 submits + 1 failure), one in 4 submissions raising (3 + 1).
		d.do("scores q-low class 0.3 3")
		d.do("scores q-low class 0.9 1")
		d.do("submits q-v 3 1 1")
		scores += 8
		time.Sleep(time.Second)

		alerts, err := prom.Alerts()
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range alerts {
			if a.Labels["alertname"] != "agreement_drop" || a.State != "firing" {
				continue
			}
			switch a.Labels["queue_id"] {
			case "q-drop":
				if dropAt.IsZero() {
					t.Fatalf("Prometheus fired agreement_drop for q-drop before its scores fell: %v", a)
				}
				if !promFired {
					t.Logf("Prometheus: agreement_drop firing for q-drop %v after the fall: %s", time.Since(dropAt).Round(time.Second), a.Annotations["summary"])
				}
				promFired = true
			default:
				steadyFired = a.Labels["queue_id"]
			}
		}
		for _, g := range f.gateways {
			for _, line := range strings.Split(g.c.Output(), "\n") {
				if !strings.Contains(line, `"rule": "agreement_drop", "status": "firing"`) {
					continue
				}
				switch {
				case strings.Contains(line, `"queue_id":"q-drop"`):
					if dropAt.IsZero() {
						t.Fatalf("the alert processor fired agreement_drop for q-drop before its scores fell: %s", line)
					}
					if !procFired {
						t.Logf("alert processor: agreement_drop firing for q-drop %v after the fall", time.Since(dropAt).Round(time.Second))
					}
					procFired = true
				default:
					steadyFired = line
				}
			}
		}
		if steadyFired != "" {
			t.Fatalf("agreement_drop fired for a steady queue: %s", steadyFired)
		}
	}
	if !promFired || !procFired {
		t.Fatalf("agreement_drop for q-drop: Prometheus fired %v, the alert processor fired %v", promFired, procFired)
	}

	// The new panels of the Anvil queue health dashboard, on the same data.
	panel := dashboardPanel(t, filepath.Join(root, "deploy", "grafana", "anvil-queue-health.json"))
	value := func(q string, labels map[string]string) float64 {
		s, err := prom.Query(q)
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range s {
			if matchesMap(x.Metric, labels) {
				return x.Value
			}
		}
		return math.NaN()
	}
	checks := []struct {
		title, ref string
		labels     map[string]string
		want       float64
	}{
		{"Agreement: 1h mean against its last day", "A", map[string]string{"queue_id": "q-steady", "dimension": "bbox"}, 0.75},
		{"Agreement: 1h mean against its last day", "B", map[string]string{"queue_id": "q-steady", "dimension": "bbox"}, 0.75},
		{"Agreement: 1h mean against its last day", "C", map[string]string{"queue_id": "q-steady", "dimension": "bbox"}, 0.6},
		{"Share of scores below 0.4 per hour", "A", map[string]string{"queue_id": "q-low", "dimension": "class"}, 0.75},
		{"Validation failure ratio (1h) per queue and schema version", "A", map[string]string{"queue_id": "q-v", "schema_version_id": "sv-1"}, 0.25},
		{"Submit exception ratio (1h) per queue", "A", map[string]string{"queue_id": "q-v"}, 0.25},
	}
	for _, c := range checks {
		if got := value(panel(c.title, c.ref), c.labels); !near(got, c.want, 1e-9) {
			t.Errorf("panel %q %s %v = %v, want %v", c.title, c.ref, c.labels, got, c.want)
		}
	}
	// Lowest-scoring labelers of q-1: the 5 lowest of 6, by their latest score.
	s, err := prom.Query(panel("Lowest-scoring labelers per queue", "A"))
	if err != nil {
		t.Fatal(err)
	}
	var lowest []string
	for _, x := range s {
		if x.Metric["queue_id"] == "q-1" {
			lowest = append(lowest, fmt.Sprintf("%s=%v", x.Metric["labeler_id"], x.Value))
		}
	}
	sort.Strings(lowest)
	if want := []string{"u-2=0.4", "u-3=0.6", "u-4=0.35", "u-5=0.7", "u-6=0.55"}; fmt.Sprint(lowest) != fmt.Sprint(want) {
		t.Errorf("lowest-scoring labelers of q-1: %v, want %v (the 5 lowest of 6)", lowest, want)
	}
	// Every score sent is in the histogram, once (the heatmap's data).
	if a := d.do("flush fw 30000"); a != "ok" {
		t.Fatalf("flush: %s", a)
	}
	e2etest.Eventually(t, 60*time.Second, func() bool {
		return value(`sum(max without (anvilcol_replica) (anvil_agreement_score_count))`, nil) == float64(scores)
	}, "anvil_agreement_score_count = %d scores sent", scores)
}

// matchesMap tells whether labels has every pair of want.
func matchesMap(labels, want map[string]string) bool {
	for k, v := range want {
		if labels[k] != v {
			return false
		}
	}
	return true
}
