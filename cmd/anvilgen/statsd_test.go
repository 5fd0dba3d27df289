package main

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/anvil/anvilcol/contract"
)

// TelemetryMetricsStatsd (formatter :datadog) formats a counter as `1|c`, a
// sum as `<value>|c`, a last_value as `|g`, a summary as `|h`, a
// distribution as `|d`, tags as `|#k:v,k:v` in definition order, and durations
// converted from native (ns) units as Elixir floats.
func TestStatsdLinesAreWhatTelemetryMetricsStatsdEmits(t *testing.T) {
	tests := []struct {
		name string
		e    Event
		want string
	}{
		{"counter and distribution of a label submit",
			Event{Name: "anvil.label.submit.stop",
				Measurements: []kv{{"duration", integer(30_000_000)}},
				Metadata:     []kv{{"queue_id", str("q-1")}, {"labeler_id", str("u-7")}, {"schema_version_id", str("sv-3")}}},
			"anvil.label.submit.count:1|c|#queue_id:q-1,schema_version_id:sv-3\n" +
				"anvil.label.submit.duration:30.0|d|#queue_id:q-1\n"},
		{"fractional milliseconds",
			Event{Name: "anvil.assignment.dispatch.stop",
				Measurements: []kv{{"duration", integer(42_123_456)}},
				Metadata:     []kv{{"queue_id", str("q-1")}, {"policy_type", str("round_robin")}}},
			"anvil.assignment.dispatch.duration:42.123456|d|#queue_id:q-1,policy_type:round_robin\n"},
		{"seconds for exports",
			Event{Name: "anvil.export.generate.stop",
				Measurements: []kv{{"duration", integer(12_500_000_000)}},
				Metadata:     []kv{{"format", str("jsonl")}}},
			"anvil.export.generate.duration:12.5|d|#format:jsonl\n"},
		{"a sum carries its value",
			Event{Name: "anvil.assignment.timed_out",
				Measurements: []kv{{"count", integer(3)}},
				Metadata:     []kv{{"queue_id", str("q-1")}, {"requeued", boolean(true)}}},
			"anvil.assignment.timed_out.count:3|c|#queue_id:q-1\n"},
		{"low score: counter, distribution, summary as histogram",
			Event{Name: "anvil.agreement.low_score",
				Measurements: []kv{{"value", float(0.42)}},
				Metadata:     []kv{{"sample_id", str("s-1")}, {"dimension", str("bbox")}}},
			"anvil.agreement.low_score.count:1|c|#dimension:bbox\n" +
				"anvil.agreement.low_score.distribution:0.42|d|#dimension:bbox\n" +
				"anvil.agreement.low_score.value:0.42|h|#dimension:bbox\n"},
		{"last_value from a metadata key",
			Event{Name: "anvil.export.progress",
				Measurements: []kv{{"rows_processed", integer(5000)}},
				Metadata:     []kv{{"export_id", str("e-1")}, {"progress_pct", integer(50)}}},
			"anvil.export.progress.progress_pct:50|g|#export_id:e-1\n"},
		{"an untagged counter", Event{Name: "anvil.queue.created", Metadata: []kv{{"queue_id", str("q-1")}}},
			"anvil.queue.created.count:1|c\n"},
		{"a missing tag is empty", Event{Name: "anvil.auth.login_failed", Metadata: []kv{{"provider", str("github")}}},
			"anvil.auth.login_failed.count:1|c|#provider:github,reason:\n"},
		{"no definition reads a start event", Event{Name: "anvil.label.submit.start"}, ""},
		{"a distribution without its measurement is skipped",
			Event{Name: "anvil.label.submit.stop", Metadata: []kv{{"queue_id", str("q-1")}, {"schema_version_id", str("sv-1")}}},
			"anvil.label.submit.count:1|c|#queue_id:q-1,schema_version_id:sv-1\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, n := appendStatsdLines(nil, &tt.e)
			assert.Equal(t, tt.want, string(got))
			assert.Equal(t, strings.Count(tt.want, "\n"), n)
		})
	}
}

func TestStatsdDefinitionsCoverTheCatalogOnce(t *testing.T) {
	seen := map[string]bool{}
	for _, d := range adr008 {
		require.False(t, seen[d.name], "duplicate %s", d.name)
		seen[d.name] = true
		assert.Contains(t, []string{"counter", "sum", "last_value", "summary", "distribution"}, d.kind, d.name)
		assert.True(t, strings.HasPrefix(d.event, "anvil."), d.name)
	}
	// The anvil receiver's built-in catalog (contract/events.json) but the
	// forwarder's own report; TestAnvilPathAndStatsdPathCarryTheSameMetrics
	// checks the names against the real receiver.
	want := 0
	for _, m := range contract.MustLoad().Metrics {
		if !strings.HasPrefix(m.Name, "anvil.forwarder.") {
			want++
		}
	}
	assert.Len(t, adr008, want)
	assert.Greater(t, want, 20)
}

func TestPackLinesKeepsDatagramsWithinTheMTU(t *testing.T) {
	lines := []byte("a:1|c\nbb:1|c\nccc:1|c\n")
	var buf []byte
	tests := []struct {
		mtu  int
		want []string
	}{
		{512, []string{"a:1|c\nbb:1|c\nccc:1|c"}},
		{13, []string{"a:1|c\nbb:1|c", "ccc:1|c"}},
		{12, []string{"a:1|c\nbb:1|c", "ccc:1|c"}},
		{11, []string{"a:1|c", "bb:1|c", "ccc:1|c"}},
		{3, []string{"a:1|c", "bb:1|c", "ccc:1|c"}}, // a line longer than the MTU goes alone
	}
	for _, tt := range tests {
		var got []string
		for _, p := range packLines(lines, tt.mtu, &buf) {
			got = append(got, string(p))
			if len(p) > tt.mtu {
				assert.NotContains(t, string(p), "\n", "only a single line may exceed the MTU")
			}
		}
		assert.Equal(t, tt.want, got, "mtu %d", tt.mtu)
	}
	assert.Empty(t, packLines(nil, 512, &buf))
}

func TestElixirNumbers(t *testing.T) {
	for _, tt := range []struct {
		v       float64
		isFloat bool
		want    string
	}{
		{3, false, "3"}, {3, true, "3.0"}, {0.42, true, "0.42"}, {-21, false, "-21"}, {1e21, true, "1e+21"},
	} {
		assert.Equal(t, tt.want, string(appendElixirNumber(nil, tt.v, tt.isFloat)))
	}
}
