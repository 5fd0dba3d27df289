package anvilreceiver

import (
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/anvil/anvilcol/contract"
)

// lowScoreBelow04 is the largest float64 below 0.4. Bucket upper bounds are
// inclusive, so the bucket ending there holds exactly the scores < 0.4
// (low_agreement's condition); Prometheus shows it as le="0.39999999999999997".
var lowScoreBelow04 = math.Nextafter(0.4, 0)

// The catalog is the contract's `metrics`, entry by entry, every field carried.
func TestCatalogIsTheContractsMetrics(t *testing.T) {
	want := contract.MustLoad().Metrics
	got := catalog()
	require.Len(t, got, len(want))
	for i, m := range want {
		g := got[i]
		m.Capped = nil // the agent's cardinality guard reads it (contract/configs_test.go), not the receiver
		assert.Equal(t, m, contract.Metric{
			Name: g.Name, Type: g.Type.String(), Event: g.Event, Measurement: g.Measurement, Unit: g.Unit,
			Buckets: g.Buckets, Tags: g.Tags, Monotonic: g.Monotonic, Description: g.Description,
		}, m.Name)
	}
	// Fresh slices: a caller that edits its catalog does not edit the contract.
	got[0].Tags = append(got[0].Tags, "x")
	assert.NotEqual(t, got[0].Tags, catalog()[0].Tags)
}

// Every built-in metric reads an event Anvil really fires: a metric bound to
// an event that never fires (a bare span prefix such as
// anvil.assignment.dispatch, or an invented name) would silently stay empty.
func TestCatalogBindsEveryMetricToAContractEvent(t *testing.T) {
	names := contract.MustLoad().Names()
	for _, m := range catalog() {
		assert.Contains(t, names, m.event(), "%s reads %q, which is not an event of the contract", m.Name, m.event())
	}
}

// The receiver's view of the catalog (event and measurement defaulted the way
// it defaults them) agrees with the contract: every tag is a metadata key of
// the wire event, and every measurement read is a measurement of that event
// or, as the receiver falls back to it, a metadata key (progress_pct).
func TestCatalogReadsWhatItsWireEventCarries(t *testing.T) {
	c := contract.MustLoad()
	for _, m := range catalog() {
		w, ok := c.Wire(m.event())
		require.True(t, ok, m.Name)
		md := w.Metadata()
		for _, tag := range m.Tags {
			_, ok := md[tag]
			assert.True(t, ok, "%s is tagged by %q, which %s does not carry", m.Name, tag, w.Name)
		}
		if m.Type == TypeCounter {
			continue
		}
		_, inMeasurements := w.Measurements()[m.measurement()]
		_, inMetadata := md[m.measurement()]
		assert.True(t, inMeasurements || inMetadata, "%s reads %q, which %s does not carry", m.Name, m.measurement(), w.Name)
	}
}

// Durations are read from a span's `stop` event, where :telemetry.span/3 puts
// the `duration` measurement.
func TestCatalogReadsDurationsFromStopEvents(t *testing.T) {
	for _, m := range catalog() {
		if m.measurement() != "duration" || m.Type == TypeCounter {
			continue
		}
		_, isStop := strings.CutSuffix(m.event(), ".stop")
		assert.True(t, isStop, "%s reads duration from %q, not a stop event", m.Name, m.event())
		assert.Contains(t, []string{"ns", "us", "ms", "s"}, m.Unit, "%s: a duration needs a time unit to be converted", m.Name)
	}
}

// No high-cardinality key (ADR-008) is a tag, except where the contract
// keeps one on purpose under the agent's series cap (contract.Metric.Capped).
func TestCatalogKeepsHighCardinalityKeysOut(t *testing.T) {
	capped := map[string][]string{}
	for _, m := range contract.MustLoad().Metrics {
		capped[m.Name] = m.Capped
	}
	for _, m := range catalog() {
		for _, tag := range m.Tags {
			if slices.Contains(capped[m.Name], tag) {
				continue
			}
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
		assert.True(t, slices.Contains(m.Buckets, lowScoreBelow04), "the contract's 0.39999999999999997 must parse to exactly math.Nextafter(0.4, 0)")
		assert.Less(t, lowScoreBelow04, 0.4)
		assert.Equal(t, "0.39999999999999997", strconv.FormatFloat(lowScoreBelow04, 'f', -1, 64), "the le label Prometheus shows")
		return
	}
	t.Fatal("anvil.agreement.low_score.distribution not in the catalog")
}
