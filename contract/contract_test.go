package contract

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// highCardinality are ADR-008's keys that are never a metric attribute.
var highCardinality = []string{"labeler_id", "sample_id", "assignment_id"}

// timeUnits are the metric units the receiver converts a duration into.
var timeUnits = []string{"ns", "us", "ms", "s"}

// metricProblems lists where the metric catalog disagrees with the events
// it reads, as they travel (WireEvent: a span's start keys on start, stop and
// exception, its stop keys on stop only).
func metricProblems(c *Contract) []string {
	var out []string
	bad := func(m Metric, format string, args ...any) {
		out = append(out, m.Name+": "+fmt.Sprintf(format, args...))
	}
	for _, m := range c.Metrics {
		w, ok := c.Wire(m.Event)
		if !ok {
			bad(m, "reads %q, which is not an event of the contract", m.Event)
			continue
		}
		md := w.Metadata()
		for _, tag := range m.Tags {
			if slices.Contains(highCardinality, tag) && !slices.Contains(m.Capped, tag) {
				bad(m, "tagged by %q, a high-cardinality key (ADR-008)", tag)
			}
			if _, ok := md[tag]; ok {
				continue
			}
			if key, ok := w.Event.Metadata[tag]; ok && key.From == Stop {
				bad(m, "tagged by %q, which %s never carries: the spanned function returns it (from: stop), so only %s.stop has it",
					tag, w.Name, w.Event.Name)
				continue
			}
			bad(m, "tagged by %q, which is not a metadata key of %s", tag, w.Name)
		}
		if m.Type == "counter" {
			if m.Measurement != "" {
				bad(m, "a counter counts events: it reads no measurement (%q)", m.Measurement)
			}
			continue
		}
		if m.Measurement == "" {
			bad(m, "a %s must name the measurement it reads", m.Type)
			continue
		}
		// The receiver reads a measurement, falling back to a numeric
		// metadata key of that name (progress_pct).
		_, inMeasurements := w.Measurements()[m.Measurement]
		_, inMetadata := md[m.Measurement]
		if !inMeasurements && !inMetadata {
			bad(m, "reads %q, which %s carries neither as a measurement nor as metadata", m.Measurement, w.Name)
		}
		if m.Measurement == "duration" {
			if w.Lifecycle != Stop {
				bad(m, "reads duration from %s: durations are read from a span's stop event", w.Name)
			}
			if !slices.Contains(timeUnits, m.Unit) {
				bad(m, "a duration needs a time unit (%s) to be converted from the event's, not %q", strings.Join(timeUnits, ", "), m.Unit)
			}
		}
	}
	return out
}

// Every catalog metric reads what its wire event carries: tags are metadata
// keys of that event (after the merge: a span's start keys on all three
// events, its stop keys on stop only), measurements exist there (or as
// metadata, where the receiver falls back), no tag is a high-cardinality key,
// and durations come from stop events with a time unit.
func TestCatalogMetricsAgreeWithTheirWireEvents(t *testing.T) {
	for _, p := range metricProblems(MustLoad()) {
		t.Error(p)
	}
}

// The check above is the one that catches a metric tagged by a key its
// event never carries: policy_type is returned by a dispatch that succeeds,
// so an exception counter tagged by it would have one series, without it.
func TestMetricCheckCatchesAnExceptionTaggedByAStopKey(t *testing.T) {
	c := parse(t)
	for i := range c.Metrics {
		m := &c.Metrics[i]
		switch m.Name {
		case "anvil.assignment.dispatch.exception.count":
			m.Tags = []string{"policy_type"}
		case "anvil.label.submit.duration":
			m.Tags = []string{"queue_id", "labeler_id"}
		case "anvil.agreement.compute.duration":
			m.Event = "anvil.agreement.compute.exception"
		case "anvil.export.progress.progress_pct":
			m.Measurement = "percent"
		}
	}
	want := []string{
		"anvil.assignment.dispatch.exception.count: tagged by \"policy_type\", which anvil.assignment.dispatch.exception never carries: " +
			"the spanned function returns it (from: stop), so only anvil.assignment.dispatch.stop has it",
		`anvil.label.submit.duration: tagged by "labeler_id", a high-cardinality key (ADR-008)`,
		"anvil.agreement.compute.duration: reads duration from anvil.agreement.compute.exception: durations are read from a span's stop event",
		`anvil.export.progress.progress_pct: reads "percent", which anvil.export.progress carries neither as a measurement nor as metadata`,
	}
	if got := metricProblems(c); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// parse returns a private copy of the contract, to modify.
func parse(t *testing.T) *Contract {
	t.Helper()
	var c Contract
	if err := json.Unmarshal(Raw(), &c); err != nil {
		t.Fatal(err)
	}
	return &c
}

// A span's start keys travel on all three of its events, its stop keys on
// stop only; :telemetry.span/3 adds kind, reason and stacktrace to an
// exception; measurements are where `on` puts them.
func TestWireEventsCarryStartKeysOnStopAndException(t *testing.T) {
	c := MustLoad()
	keys := func(name string) (md, ms []string) {
		w, ok := c.Wire(name)
		if !ok {
			t.Fatalf("%s: not a wire event", name)
		}
		return SortedKeys(w.Metadata()), SortedKeys(w.Measurements())
	}
	for name, want := range map[string][2]string{
		"anvil.label.submit.start": {"assignment_id labeler_id queue_id sample_id sample_type telemetry_span_context",
			"monotonic_time system_time"},
		"anvil.label.submit.stop": {"assignment_id label_id labeler_id queue_id sample_id sample_type schema_version_id telemetry_span_context",
			"cost duration monotonic_time time_on_task"},
		"anvil.label.submit.exception": {"assignment_id kind labeler_id queue_id reason sample_id sample_type stacktrace telemetry_span_context",
			"duration monotonic_time"},
		"anvil.agreement.low_score": {"dimension queue_id sample_id threshold", "value"},
	} {
		md, ms := keys(name)
		if got := strings.Join(md, " "); got != want[0] {
			t.Errorf("%s metadata: got %s, want %s", name, got, want[0])
		}
		if got := strings.Join(ms, " "); got != want[1] {
			t.Errorf("%s measurements: got %s, want %s", name, got, want[1])
		}
	}
	for _, name := range []string{"anvil.label.submit", "anvil.label.submit.finish", "anvil.label.validation_failed.stop", "anvil"} {
		if _, ok := c.Wire(name); ok {
			t.Errorf("%s: not a wire event, found", name)
		}
	}
}

// Names lists every wire event once, and Wire finds each.
func TestNamesAreTheWireEvents(t *testing.T) {
	c := MustLoad()
	names := c.Names()
	seen := map[string]bool{}
	spans := 0
	for _, ev := range c.Events {
		if ev.Kind == KindSpan {
			spans++
		}
	}
	if want := len(c.Events) + 2*spans; len(names) != want {
		t.Errorf("%d names, want %d", len(names), want)
	}
	for _, n := range names {
		if seen[n] {
			t.Errorf("%s listed twice", n)
		}
		seen[n] = true
		if w, ok := c.Wire(n); !ok || w.Name != n {
			t.Errorf("Wire(%q) = %+v, %v", n, w, ok)
		}
	}
}

// Load refuses a catalog that repeats a metric or reads an event the
// contract does not know.
func TestLoadRejectsABrokenContract(t *testing.T) {
	c := parse(t)
	c.Metrics = append(c.Metrics, c.Metrics[0])
	if err := c.validate(); err == nil || !strings.Contains(err.Error(), "repeated") {
		t.Errorf("a repeated metric: %v", err)
	}
	c = parse(t)
	c.Metrics[0].Event = "anvil.queue.created.stop"
	if err := c.validate(); err == nil || !strings.Contains(err.Error(), "not in the contract") {
		t.Errorf("a metric of an unknown event: %v", err)
	}
}
