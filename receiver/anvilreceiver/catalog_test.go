package anvilreceiver

import (
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

// anvilEvents is the event catalog of ARCHITECTURE.md ("The event catalog
// (ADR-008 plus what Anvil really emits)"): the events Anvil fires. A span's
// {start,stop,exception} are listed one by one.
var anvilEvents = expandSpans(
	"anvil.queue.created", "anvil.queue.status_changed",
	"anvil.assignment.dispatch.{}", "anvil.assignment.created",
	"anvil.assignment.completed", "anvil.assignment.timed_out",
	"anvil.label.submit.{}", "anvil.label.validation_failed",
	"anvil.agreement.compute.{}", "anvil.agreement.low_score",
	"anvil.agreement.batch_recompute.{}",
	"anvil.export.generate.{}", "anvil.export.progress", "anvil.export.completed",
	"anvil.export.failed", "anvil.export.pii_detected",
	"anvil.auth.login_success", "anvil.auth.login_failed", "anvil.auth.access_granted",
	"anvil.auth.access_denied",
	"anvil.policy.select_assignment.{}", "anvil.policy.requeue",
)

func expandSpans(names ...string) map[string]bool {
	out := make(map[string]bool, len(names)+16)
	for _, n := range names {
		if prefix, ok := strings.CutSuffix(n, ".{}"); ok {
			for _, lc := range []string{"start", "stop", "exception"} {
				out[prefix+"."+lc] = true
			}
			continue
		}
		out[n] = true
	}
	return out
}

// Every built-in metric reads an event Anvil really fires: a metric bound to
// an event that never fires (a bare span prefix such as
// anvil.assignment.dispatch, or an invented name) would silently stay empty.
func TestCatalogBindsEveryMetricToACatalogEvent(t *testing.T) {
	for _, m := range catalog() {
		assert.True(t, anvilEvents[m.event()], "%s reads %q, which is not in the event catalog", m.Name, m.event())
	}
}

// Durations are read from a span's `stop` event, where :telemetry.span/3 puts
// the `duration` measurement.
func TestCatalogReadsDurationsFromStopEvents(t *testing.T) {
	for _, m := range catalog() {
		if m.measurement() != "duration" {
			continue
		}
		_, isStop := strings.CutSuffix(m.event(), ".stop")
		assert.True(t, isStop, "%s reads duration from %q, not a stop event", m.Name, m.event())
		assert.Contains(t, []string{"ns", "us", "ms", "s"}, m.Unit, "%s: a duration needs a time unit to be converted", m.Name)
	}
}

// No high-cardinality key (ADR-008) is a tag.
func TestCatalogKeepsHighCardinalityKeysOut(t *testing.T) {
	for _, m := range catalog() {
		for _, tag := range m.Tags {
			assert.NotContains(t, []string{"labeler_id", "sample_id", "assignment_id"}, tag, m.Name)
		}
	}
}

// low_agreement's condition (value < 0.4) is exactly one cumulative bucket.
func TestLowScoreDistributionHasABucketForScoresBelowTheAlertThreshold(t *testing.T) {
	for _, m := range catalog() {
		if m.Name != "anvil.agreement.low_score.distribution" {
			continue
		}
		assert.Contains(t, m.Buckets, lowScoreBelow04)
		assert.Less(t, lowScoreBelow04, 0.4)
		assert.Equal(t, "0.39999999999999997", strconv.FormatFloat(lowScoreBelow04, 'f', -1, 64), "the le label Prometheus shows")
		return
	}
	t.Fatal("anvil.agreement.low_score.distribution not in the catalog")
}
