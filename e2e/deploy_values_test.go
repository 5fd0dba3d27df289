//go:build e2e

package e2e

import (
	"fmt"
	"math"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/anvil/anvilcol/contract"
	"github.com/anvil/anvilcol/internal/e2etest"
)

// valuesZeroHold is the gateways' zero_step hold here: Prometheus scrapes
// every 1 s and the rules read counters at a 15 s subquery resolution, so the
// zero must stay at least 1 s + 15 s (deploy/README.md); 20 s leaves a margin.
const valuesZeroHold = "20s"

// valuesExpiration is the gateways' metric_expiration here (5m shipped), so
// that a frozen copy left by a writer that restarted on the other replica
// goes away within the test.
const valuesExpiration = "10s"

// TestDeployRulesReadTrueCountsAcrossMovesAndRestarts: a known stream of
// Anvil events, through config/agent.yaml and two gateway replicas on
// config/gateway.yaml, scraped by a real Prometheus with the README's scrape
// config and deploy/prometheus loaded, must read its true counts in every
// recording rule and in a sample of dashboard panels, across
//   - a replica move: the replica the agent sends to is killed (-9) after the
//     first round, the agent fails over to the other one;
//   - a new series: a queue first seen after the move (3 + 2 timeouts);
//   - a writer restart: the agent is killed (-9) and started again after the
//     second round (its cumulative series start again, at 0), landing on
//     either replica (the killed one runs again by then).
//
// Every expected value is exact when evaluated at a multiple of 15 s (the
// subqueries' steps): the check queries there. Recorded series, evaluated
// in between, are checked within the extrapolation of one 15 s step.
func TestDeployRulesReadTrueCountsAcrossMovesAndRestarts(t *testing.T) {
	root := e2etest.RepoRoot(t)
	// The agent flushes every second here: a series is new to the gateways'
	// zero_step when it began at most 10 s before (2m shipped, for a
	// client's first export); the writer moves 20 s after it began.
	f := newFleetEnv(t, map[string]string{"ANVILCOL_METRIC_EXPIRATION": valuesExpiration, "ANVILCOL_ZERO_HOLD": valuesZeroHold,
		"ANVILCOL_ZERO_STEP_MAX_AGE": "10s"})
	defer f.stopAll()
	agent := f.startAgent(t, "node-1", nil)

	targets := f.exporterTargets()
	prom := startDeployPrometheus(t, filepath.Join(root, "deploy", "prometheus", "anvil-rules.yaml"), targets, "")
	started := time.Now()

	send := func(round string, events []fleetEvent) {
		t.Helper()
		if !postEvents(t, agent, nil, events) {
			t.Fatalf("round %s: the agent did not accept the events", round)
		}
	}
	// dedup is what every rule reads: one copy per writer series.
	submits := `sum(max without (anvilcol_replica) (anvil_label_submit_count_total))`
	waitFor := func(expr string, want float64, what string) {
		t.Helper()
		e2etest.Eventually(t, 90*time.Second, func() bool {
			s, err := prom.Query(expr)
			return err == nil && len(s) == 1 && s[0].Value == want
		}, "%s: %s = %v", what, expr, want)
	}

	// Round 1, on the replica the agent picked.
	send("1", valuesRound(t, nil))
	waitFor(submits, 10, "round 1 in Prometheus")
	first := replicasOf(t, prom, "anvil_label_submit_count_total")
	if len(first) != 1 {
		t.Fatalf("round 1 exposed by replicas %v, want one", first)
	}
	var moved *fleetGateway
	for _, g := range f.gateways {
		if fmt.Sprintf("%s:%d", g.listenHost, g.promPort) == first[0] {
			moved = g
		}
	}
	if moved == nil {
		t.Fatalf("replica %s is none of the fleet's", first[0])
	}

	// The move: that replica dies; round 2, with a new queue, reaches the other.
	moved.c.Kill()
	t.Logf("killed gateway replica %s after %v", first[0], time.Since(started).Round(time.Second))
	send("2", valuesRound(t, nil))
	waitFor(submits, 20, "round 2 in Prometheus after the move")
	// A new queue, once the writer is on the other replica.
	send("2 (new queue)", []fleetEvent{
		valuesEvent("anvil.assignment.timed_out", map[string]any{"count": 3}, map[string]any{"queue_id": "q-new", "requeued": true, "escalated": false}),
		valuesEvent("anvil.assignment.timed_out", map[string]any{"count": 2}, map[string]any{"queue_id": "q-new", "requeued": true, "escalated": false}),
	})
	waitFor(`sum(max without (anvilcol_replica) (anvil_assignment_timed_out_count_total{queue_id="q-new"}))`, 5, "the new queue's timeouts")
	if now := replicasOf(t, prom, `anvil_label_submit_count_total`); len(now) != 1 || now[0] == first[0] {
		t.Fatalf("after the kill the writer's series are on %v, want the other replica than %s", now, first[0])
	}
	// The rules read the max over the copies at 15 s steps: a total shown for
	// less than one step before a reset is not in them (deploy/README.md,
	// what remains approximate). Restart the writer only once a step has
	// seen round 2 and the new queue's 5.
	stepSaw := func(expr string, want float64, what string) {
		t.Helper()
		e2etest.Eventually(t, 90*time.Second, func() bool {
			got, err := valueAt(prom, expr, "", time.Now().Add(-2*time.Second).Truncate(15*time.Second))
			return err == nil && near(got, want, 1e-9)
		}, "%s: %s = %v at a 15 s step", what, expr, want)
	}
	stepSaw(`sum(increase((max without (anvilcol_replica) (anvil_assignment_timed_out_count_total{queue_id="q-new"}))[1h:15s]))`, 5, "the new queue's 5")
	stepSaw(`sum(increase((max without (anvilcol_replica) (anvil_label_submit_count_total))[1h:15s]))`, 20, "round 2")

	// The restart: the killed replica runs again, the agent is killed and
	// started again (its series start at 0 on whichever replica it picks).
	moved.c = e2etest.Start(t, moved.opts)
	agent.c.Kill()
	agent.c = e2etest.Start(t, agent.opts)
	t.Logf("agent restarted after %v", time.Since(started).Round(time.Second))
	// q-new again, so its series goes on after the restart: 3 + 1, less than
	// its 5 before, as every other series of round 3 (deploy/README.md: a
	// restarted writer that lands on the other replica while the old copy is
	// still shown is counted once that copy expires, unless its new total has
	// passed the old one by then).
	send("3", valuesRound(t, []fleetEvent{
		valuesEvent("anvil.assignment.timed_out", map[string]any{"count": 3}, map[string]any{"queue_id": "q-new", "requeued": true, "escalated": false}),
		valuesEvent("anvil.assignment.timed_out", map[string]any{"count": 1}, map[string]any{"queue_id": "q-new", "requeued": true, "escalated": false}),
	}))

	// The true counts: three rounds plus the new queue's two (5 + 4).
	exact := map[string]float64{
		`queue_id:anvil_label_submit_count:increase1h{queue_id="q-1"}`:                                                            18,
		`queue_id:anvil_label_submit_count:increase1h{queue_id="q-2"}`:                                                            12,
		`queue_id:anvil_assignment_timed_out_count:increase1h{queue_id="q-1"}`:                                                    21,
		`queue_id:anvil_assignment_timed_out_count:increase1h{queue_id="q-new"}`:                                                  9,
		`format:anvil_export_generate_exception_count:increase1h{format="csv"}`:                                                   6,
		`dimension_le:anvil_agreement_low_score_distribution_bucket:increase1h{dimension="bbox",le="0.3"}`:                        6,
		`dimension_le:anvil_agreement_low_score_distribution_bucket:increase1h{dimension="bbox",le="0.5"}`:                        6,
		`dimension_le:anvil_agreement_low_score_distribution_bucket:increase1h{dimension="bbox",le="+Inf"}`:                       9,
		`policy_type_le:anvil_assignment_dispatch_duration_milliseconds_bucket:rate5m{policy_type="priority",le="500"}`:           0,
		`policy_type_le:anvil_assignment_dispatch_duration_milliseconds_bucket:rate5m{policy_type="priority",le="1000"}`:          15.0 / 300,
		`policy_type_le:anvil_assignment_dispatch_duration_milliseconds_bucket:rate5m{policy_type="round_robin",le="50"}`:         15.0 / 300,
		`policy_type:anvil_assignment_dispatch_duration_milliseconds:p50_5m{policy_type="priority"}`:                              750,
		`policy_type:anvil_assignment_dispatch_duration_milliseconds:p99_5m{policy_type="priority"}`:                              995,
		`policy_type:anvil_assignment_dispatch_duration_milliseconds:p50_5m{policy_type="round_robin"}`:                           30,
		`policy_type:anvil_assignment_dispatch_duration_milliseconds:p99_5m{policy_type="round_robin"}`:                           49.6,
		`policy_type_le:anvil_policy_select_assignment_duration_milliseconds_bucket:rate5m{policy_type="round_robin",le="5"}`:     12.0 / 300,
		`policy_type:anvil_policy_select_assignment_duration_milliseconds:p99_5m{policy_type="round_robin"}`:                      4.96,
		`provider:anvil_auth_login_failed_count:rate5m{provider="github"}`:                                                        3.0 / 300,
		`provider:anvil_auth_login_success_count:rate5m{provider="github"}`:                                                       9.0 / 300,
		`provider:anvil_auth_login_failure:ratio_rate5m{provider="github"}`:                                                       0.25,
		`format_le:anvil_export_generate_duration_seconds_bucket:rate5m{format="jsonl",le="30"}`:                                  6.0 / 300,
		`format:anvil_export_generate_duration_seconds:p99_5m{format="jsonl"}`:                                                    29.8,
		`queue_id:anvil_queue_active_labelers_count:max{queue_id="q-1"}`:                                                          7,
		`queue_id:anvil_queue_pending_assignments_count:max{queue_id="q-1"}`:                                                      42,
		`queue_id:anvil_label_cost:increase1h{queue_id="q-1"}`:                                                                    450,
		`queue_id_sample_type_le:anvil_label_time_on_task_seconds_bucket:increase1h{queue_id="q-1",sample_type="image",le="120"}`: 18,
		`queue_id_sample_type:anvil_label_time_on_task_seconds:p50_1h{queue_id="q-1",sample_type="image"}`:                        90,
		`queue_id_sample_type:anvil_label_time_on_task_seconds:p90_1h{queue_id="q-1",sample_type="image"}`:                        114,
		`policy_type:anvil_assignment_dispatch_slo_errors:ratio_rate5m{policy_type="priority"}`:                                   1,
		`policy_type:anvil_assignment_dispatch_slo_errors:ratio_rate30m{policy_type="priority"}`:                                  1,
		`policy_type:anvil_assignment_dispatch_slo_errors:ratio_rate1h{policy_type="round_robin"}`:                                0,
		`policy_type:anvil_assignment_dispatch_slo_errors:ratio_rate6h{policy_type="priority"}`:                                   1,
		`policy_type:anvil_policy_select_assignment_exception:ratio1h{policy_type="round_robin"}`:                                 0.2,
		`policy_type:anvil_policy_select_assignment_exception_count:increase1h{policy_type="round_robin"}`:                        3,
		`policy_type:anvil_policy_select_assignment_count:increase1h{policy_type="round_robin"}`:                                  12,
		`queue_id:anvil_assignment_dispatch_exception_count:increase1h{queue_id="q-1"}`:                                           3,
		`queue_id_dimension:anvil_agreement_score_sum:increase1h{queue_id="q-1",dimension="bbox"}`:                                4.8,
		`queue_id_dimension:anvil_agreement_score_count:increase1h{queue_id="q-1",dimension="bbox"}`:                              6,
		`queue_id_dimension:anvil_agreement_score:mean1h{queue_id="q-1",dimension="bbox"}`:                                        0.8,
		`queue_id_schema_version_id:anvil_label_validation_failed_count:increase1h{queue_id="q-1",schema_version_id="sv-1"}`:      3,
		`queue_id_schema_version_id:anvil_label_submit_count:increase1h{queue_id="q-1",schema_version_id="sv-1"}`:                 18,
		`queue_id_schema_version_id:anvil_label_submit_attempts:increase1h{queue_id="q-1",schema_version_id="sv-1"}`:              21,
		`queue_id_schema_version_id:anvil_label_validation_failure:ratio1h{queue_id="q-1",schema_version_id="sv-1"}`:              3.0 / 21,
		`queue_id:anvil_label_submit_exception_count:increase1h{queue_id="q-1"}`:                                                  3,
		`queue_id:anvil_label_submit_exception:ratio1h{queue_id="q-1"}`:                                                           3.0 / 21,
		// Dispatches per queue: q-1 has all 30, 15 of them (round_robin, 42 ms)
		// within 100 ms, and 3 that raised.
		`queue_id_policy_type:anvil_assignment_dispatch_count:increase1h{queue_id="q-1",policy_type="priority"}`:               15,
		`queue_id_policy_type:anvil_assignment_dispatch_within_slo_count:increase1h{queue_id="q-1",policy_type="round_robin"}`: 15,
		`queue_id:anvil_assignment_dispatch_slo:ratio1h{queue_id="q-1"}`:                                                       0.5,
		`queue_id_le:anvil_assignment_dispatch_duration_milliseconds_bucket:rate5m{queue_id="q-1",le="1000"}`:                  30.0 / 300,
		`queue_id:anvil_assignment_dispatch_duration_milliseconds:p99_5m{queue_id="q-1"}`:                                      990,
		`queue_id:anvil_assignment_dispatch_exception:ratio1h{queue_id="q-1"}`:                                                 3.0 / 33,
		`queue_id:anvil_label_validation_failure:ratio1h{queue_id="q-1"}`:                                                      3.0 / 21,
		`queue_id:anvil_label_validation_failure:ratio1h{queue_id="q-2"}`:                                                      0,
	}
	rules := ruleFile(t, filepath.Join(root, "deploy", "prometheus", "anvil-rules.yaml"))
	recorded := map[string]string{} // record name -> expression
	for _, r := range rules {
		if r.Record != "" && !needsHistory(r.Record, r.Expr) {
			recorded[r.Record] = r.Expr
		}
	}
	checked := map[string]bool{}
	for sel := range exact {
		checked[sel[:strings.Index(sel, "{")]] = true
	}
	for name := range recorded {
		if !checked[name] {
			t.Errorf("recording rule %s has no expected value here", name)
		}
	}
	// A sample of dashboard panels ($__rate_interval = 5m): what they show for
	// the same events.
	panels := []struct {
		expr, matchers string
		want           float64
	}{
		{`histogram_quantile(0.99, sum by (queue_id, le) (rate((max without (anvilcol_replica) (anvil_label_submit_duration_milliseconds_bucket{queue_id=~".*"}))[5m:15s])))`, `queue_id="q-1"`, 49.75},
		{`sum by (provider, reason) (rate((max without (anvilcol_replica) (anvil_auth_login_failed_count_total))[5m:15s]))`, `provider="github"`, 3.0 / 300},
		{`sum by (dimension) (increase((max without (anvilcol_replica) (anvil_agreement_low_score_count_total))[1h:15s]))`, `dimension="bbox"`, 9},
		// The queue activity table (its columns that need no day of history;
		// the 24h ones are checked in anvil-rules_test.yaml) and time on task.
		{`queue_id:anvil_queue_pending_assignments_count:max{queue_id=~".*"}`, `queue_id="q-1"`, 42},
		{`queue_id:anvil_queue_active_labelers_count:max{queue_id=~".*"}`, `queue_id="q-1"`, 7},
		{`queue_id:anvil_assignment_dispatch_duration_milliseconds:p99_5m{queue_id=~".*"}`, `queue_id="q-1"`, 990},
		{`queue_id:anvil_assignment_dispatch_slo:ratio1h{queue_id=~".*"}`, `queue_id="q-1"`, 0.5},
		{`queue_id:anvil_label_validation_failure:ratio1h{queue_id=~".*"}`, `queue_id="q-1"`, 3.0 / 21},
		{`queue_id:anvil_label_validation_failure:ratio1h{queue_id=~".*"}`, `queue_id="q-2"`, 0},
		{`queue_id_sample_type:anvil_label_time_on_task_seconds:p50_1h{queue_id=~".*"}`, `queue_id="q-1",sample_type="image"`, 90},
		{`queue_id_sample_type:anvil_label_time_on_task_seconds:p90_1h{queue_id=~".*"}`, `queue_id="q-1",sample_type="image"`, 114},
		{`policy_type:anvil_assignment_dispatch_slo_errors:ratio_rate1h{policy_type=~".*"}`, `policy_type="priority"`, 1},
		{`policy_type:anvil_assignment_dispatch_slo_errors:ratio_rate6h{policy_type=~".*"}`, `policy_type="round_robin"`, 0},
	}
	onDashboard := map[string]bool{}
	for _, e := range dashboardExprs(t, filepath.Join(root, "deploy", "grafana", "anvil-queue-health.json")) {
		onDashboard[strings.ReplaceAll(substituteGrafana(e.expr), "[1m:15s]", "[5m:15s]")] = true
	}
	for _, p := range panels {
		if !onDashboard[p.expr] {
			t.Fatalf("panel expression %s is not on the dashboard any more", p.expr)
		}
	}

	// Exact at a 15 s step: each rule's expression and each panel's.
	var problems []string
	ok := func() bool {
		at := time.Now().Add(-2 * time.Second).Truncate(15 * time.Second)
		problems = problems[:0]
		for sel, want := range exact {
			name := sel[:strings.Index(sel, "{")]
			matchers := sel[strings.Index(sel, "{")+1 : len(sel)-1]
			got, err := valueAt(prom, fmt.Sprintf("(%s)", recorded[name]), matchers, at)
			ok := near(got, want, 1e-9)
			if recordedRule.MatchString(recorded[name]) && !strings.Contains(name, "ratio") && !strings.Contains(name, ":p") && !strings.Contains(name, ":mean") {
				// A sum of recorded series (evaluated between steps): within
				// one step's extrapolation, as the recorded series below.
				ok = got >= want*(1-1e-9) && got <= want*1.25+1e-9
			}
			if err != nil || !ok {
				problems = append(problems, fmt.Sprintf("%s at %s: %v (%v), want %v", sel, at.Format("15:04:05"), got, err, want))
			}
		}
		for _, p := range panels {
			got, err := valueAt(prom, p.expr, p.matchers, at)
			if err != nil || !near(got, p.want, 1e-9) {
				problems = append(problems, fmt.Sprintf("panel %s {%s}: %v (%v), want %v", p.expr, p.matchers, got, err, p.want))
			}
		}
		return len(problems) == 0
	}
	deadline := time.Now().Add(2 * time.Minute)
	for !ok() && time.Now().Before(deadline) {
		time.Sleep(3 * time.Second)
	}
	for _, p := range problems {
		t.Error(p)
	}
	t.Logf("every recording rule and sampled panel exact after %v; writer now on %v", time.Since(started).Round(time.Second),
		replicasOf(t, prom, `anvil_label_submit_count_total`))
	if time.Since(started) > 4*time.Minute {
		t.Errorf("the test took %v: the 5m rates no longer cover round 1", time.Since(started))
	}

	// The recorded series, evaluated between steps, within one step's
	// extrapolation of the exact values.
	for sel, want := range exact {
		s, err := prom.Query(sel)
		if err != nil || len(s) != 1 {
			t.Errorf("recorded %s: %v %v", sel, s, err)
			continue
		}
		if got := s[0].Value; got < want*(1-1e-9) || got > want*1.25+1e-9 {
			t.Errorf("recorded %s = %v, want %v to %v", sel, got, want, want*1.25)
		}
	}
	// And the alerts on the same data: 6 export failures (>= 3) page, 30
	// timeouts (< 50) do not.
	firing := map[string]bool{}
	alerts, err := prom.Alerts()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range alerts {
		if a.State == "firing" {
			firing[a.Labels["alertname"]] = true
		}
	}
	if !firing["export_failures"] || firing["timeout_spike"] || firing["anvil_scrape_without_honor_labels"] {
		t.Errorf("firing alerts %v: want export_failures, not timeout_spike nor anvil_scrape_without_honor_labels", firing)
	}
}

// valuesRound is one round of known events (plus extra), each on the
// contract: label submits 6 on q-1 and 4 on q-2 (30 ms); dispatches 5 of
// priority (800 ms) and 5 of round_robin (42 ms); 4 selections (2 ms); logins
// 3 successful, 1 failed (github); exports 2 failed (csv), 2 done (jsonl,
// 12.5 s); 7 timeouts on q-1; low scores 0.3, 0.3 and 0.55 on bbox; every
// submit 90 s on task (image) and costing 25; on q-1 one submit that raised,
// one validation failure, one dispatch and one selection that raised, two
// agreement scores of 0.8 (bbox); q-1's pollers: 7 active labelers, 42 pending assignments.
func valuesRound(t *testing.T, extra []fleetEvent) []fleetEvent {
	t.Helper()
	var out []fleetEvent
	add := func(n int, name string, m, md map[string]any) {
		for i := 0; i < n; i++ {
			out = append(out, valuesEvent(name, m, md))
		}
	}
	submit := map[string]any{"duration": 30e6, "time_on_task": 90e9, "cost": 25}
	add(6, "anvil.label.submit.stop", submit, map[string]any{"queue_id": "q-1", "schema_version_id": "sv-1", "labeler_id": "u-1", "assignment_id": "a-1", "sample_type": "image"})
	add(4, "anvil.label.submit.stop", submit, map[string]any{"queue_id": "q-2", "schema_version_id": "sv-1", "labeler_id": "u-1", "assignment_id": "a-2", "sample_type": "image"})
	add(1, "anvil.label.submit.exception", map[string]any{"duration": 30e6}, map[string]any{"queue_id": "q-1", "labeler_id": "u-1", "assignment_id": "a-5", "kind": "error", "reason": "boom", "stacktrace": "lib/anvil/labels.ex:1"})
	add(1, "anvil.label.validation_failed", map[string]any{}, map[string]any{"queue_id": "q-1", "schema_version_id": "sv-1", "labeler_id": "u-1"})
	add(1, "anvil.assignment.dispatch.exception", map[string]any{"duration": 5e6}, map[string]any{"queue_id": "q-1", "labeler_id": "u-1", "kind": "error", "reason": "no capacity", "stacktrace": "lib/anvil/dispatch.ex:1"})
	add(2, "anvil.agreement.compute.stop", map[string]any{"duration": 20e6, "score": 0.8}, map[string]any{"queue_id": "q-1", "sample_id": "s-3", "metric": "cohen_kappa", "dimension": "bbox"})
	add(1, "anvil.policy.select_assignment.exception", map[string]any{"duration": 2e6}, map[string]any{"queue_id": "q-1", "policy_type": "round_robin", "kind": "error", "reason": "boom", "stacktrace": "lib/anvil/policy.ex:1"})
	add(1, "anvil.queue.active_labelers", map[string]any{"count": 7}, map[string]any{"queue_id": "q-1"})
	add(1, "anvil.queue.pending_assignments", map[string]any{"count": 42}, map[string]any{"queue_id": "q-1"})
	add(5, "anvil.assignment.dispatch.stop", map[string]any{"duration": 800e6}, map[string]any{"queue_id": "q-1", "labeler_id": "u-1", "policy_type": "priority", "assignment_id": "a-3"})
	add(5, "anvil.assignment.dispatch.stop", map[string]any{"duration": 42e6}, map[string]any{"queue_id": "q-1", "labeler_id": "u-1", "policy_type": "round_robin", "assignment_id": "a-4"})
	add(4, "anvil.policy.select_assignment.stop", map[string]any{"duration": 2e6}, map[string]any{"queue_id": "q-1", "labeler_id": "u-1", "policy_type": "round_robin"})
	add(3, "anvil.auth.login_success", map[string]any{}, map[string]any{"provider": "github", "user_id": "u-1"})
	add(1, "anvil.auth.login_failed", map[string]any{}, map[string]any{"provider": "github", "reason": "bad_password"})
	add(2, "anvil.export.generate.exception", map[string]any{"duration": 1e9}, map[string]any{"export_id": "e-1", "queue_id": "q-1", "format": "csv", "kind": "error", "reason": "disk full", "stacktrace": "lib/anvil/export.ex:9"})
	add(2, "anvil.export.generate.stop", map[string]any{"duration": 12.5e9}, map[string]any{"export_id": "e-2", "queue_id": "q-1", "format": "jsonl"})
	add(1, "anvil.assignment.timed_out", map[string]any{"count": 7}, map[string]any{"queue_id": "q-1", "requeued": true, "escalated": false})
	add(2, "anvil.agreement.low_score", map[string]any{"value": 0.3}, map[string]any{"sample_id": "s-1", "dimension": "bbox", "threshold": 0.6})
	add(1, "anvil.agreement.low_score", map[string]any{"value": 0.55}, map[string]any{"sample_id": "s-2", "dimension": "bbox", "threshold": 0.6})
	out = append(out, extra...)
	c := contract.MustLoad()
	for _, e := range out {
		if problems := c.Check(e.Name, e.Measurements, e.Metadata); len(problems) > 0 {
			t.Fatalf("%s off the contract: %v", e.Name, problems)
		}
	}
	return out
}

// recordedRule matches a recording rule's name (level:metric:operations) in an expression.
var recordedRule = regexp.MustCompile(`[a-z_]+:[a-z0-9_]+:[a-z0-9_]+`)

func valuesEvent(name string, m, md map[string]any) fleetEvent {
	return fleetEvent{Name: name, TimeUnixNano: time.Now().UnixNano(), Measurements: m, Metadata: md}
}

// replicasOf lists the anvilcol_replica values that expose metric.
func replicasOf(t *testing.T, prom *e2etest.PrometheusServer, metric string) []string {
	t.Helper()
	s, err := prom.Query(fmt.Sprintf(`count by (anvilcol_replica) (%s)`, metric))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, x := range s {
		out = append(out, x.Metric["anvilcol_replica"])
	}
	sort.Strings(out)
	return out
}

// valueAt evaluates expr at `at`, keeps the series matching matchers (a
// label selector's inside, e.g. `queue_id="q-1"`; "" keeps all) and returns
// the one value left.
func valueAt(prom *e2etest.PrometheusServer, expr, matchers string, at time.Time) (float64, error) {
	s, err := prom.QueryAt(expr, at)
	if err != nil {
		return math.NaN(), err
	}
	var keep []e2etest.PromSample
	for _, x := range s {
		if matchesAll(x.Metric, matchers) {
			keep = append(keep, x)
		}
	}
	if len(keep) != 1 {
		return math.NaN(), fmt.Errorf("%d series match {%s} of %d", len(keep), matchers, len(s))
	}
	return keep[0].Value, nil
}

// matchesAll tells whether labels has every name="value" pair of matchers.
func matchesAll(labels map[string]string, matchers string) bool {
	if matchers == "" {
		return true
	}
	for _, m := range strings.Split(matchers, ",") {
		k, v, _ := strings.Cut(m, "=")
		if labels[k] != strings.Trim(v, `"`) {
			return false
		}
	}
	return true
}

func near(got, want, eps float64) bool {
	return math.Abs(got-want) <= eps*math.Max(1, math.Abs(want))
}
