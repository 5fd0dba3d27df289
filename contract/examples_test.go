package contract

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// sampleBatch reads config/examples/anvil-events.json: the README's sample
// batch, as AnvilCol.Forwarder sends ADR-shaped spans (start events with the
// start metadata; stop and exception events with it merged in).
func sampleBatch(t *testing.T) []map[string]any {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "config", "examples", "anvil-events.json"))
	if err != nil {
		t.Fatal(err)
	}
	var body struct {
		Events []map[string]any `json:"events"`
	}
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.UseNumber()
	if err := dec.Decode(&body); err != nil {
		t.Fatal(err)
	}
	return body.Events
}

func eventName(ev map[string]any) string { return NameOf(ev["name"]) }

func asMap(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

// Every event of the sample batch is one the contract knows, with every
// required key: the batch is what a merging client sends.
func TestSampleBatchFollowsTheContract(t *testing.T) {
	c := MustLoad()
	events := sampleBatch(t)
	if len(events) == 0 {
		t.Fatal("no events in the sample batch")
	}
	for i, ev := range events {
		for _, p := range c.Check(eventName(ev), asMap(ev["measurements"]), asMap(ev["metadata"])) {
			t.Errorf("event %d: %s", i, p)
		}
	}
}

// The sample batch feeds every catalog metric but the forwarder's own
// report (which the forwarder sends by itself), so the README's curl shows
// the whole catalog.
func TestSampleBatchCoversTheCatalog(t *testing.T) {
	c := MustLoad()
	seen := map[string]bool{}
	for _, ev := range sampleBatch(t) {
		seen[eventName(ev)] = true
	}
	for _, m := range c.Metrics {
		if strings.HasPrefix(m.Event, "anvil.forwarder.") {
			continue
		}
		if !seen[m.Event] {
			t.Errorf("metric %s reads %s, which the sample batch does not contain", m.Name, m.Event)
		}
	}
}

// A stop event without its span's start keys (a client that does not merge)
// is named with the fix.
func TestCheckNamesAStartKeyMissingFromAStopEvent(t *testing.T) {
	c := MustLoad()
	got := c.Check("anvil.label.submit.stop",
		map[string]any{"duration": 1.0},
		map[string]any{"schema_version_id": "sv-1", "telemetry_span_context": "#Reference<0.1.2.3>"})
	want := []string{
		`anvil.label.submit.stop: required metadata "assignment_id" is missing (set in the span's start metadata: the client must merge it into this event)`,
		`anvil.label.submit.stop: required metadata "labeler_id" is missing (set in the span's start metadata: the client must merge it into this event)`,
		`anvil.label.submit.stop: required metadata "queue_id" is missing (set in the span's start metadata: the client must merge it into this event)`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if p := c.Check("anvil.nope", nil, nil); len(p) != 1 {
		t.Errorf("unknown event: %v", p)
	}
	if p := c.Check("anvil.queue.active_labelers", map[string]any{"count": "3"}, map[string]any{"queue_id": "q"}); len(p) != 1 || !strings.Contains(p[0], "not a number") {
		t.Errorf("non-numeric measurement: %v", p)
	}
}
