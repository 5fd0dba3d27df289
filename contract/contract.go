// Package contract is Anvil's event contract, read from events.json beside
// it: for every catalog event, the measurements and metadata keys it must or
// may carry, where a span's keys are set (start or stop metadata), what reads
// each key, and the built-in metric catalog of the anvil receiver.
//
// events.json is the one source. The anvil receiver builds its catalog from
// it; the Elixir client (clients/elixir, AnvilCol.Contract) reads the same
// file at compile time; tests on both sides fail when either drifts.
package contract // import "github.com/anvil/anvilcol/contract"

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
)

//go:embed events.json
var raw []byte

// Raw returns the bytes of events.json.
func Raw() []byte { return slices.Clone(raw) }

// Lifecycle suffixes of a :telemetry.span/3 span.
const (
	Start     = "start"
	Stop      = "stop"
	Exception = "exception"
)

// Kinds of catalog events.
const (
	KindSpan  = "span"
	KindEvent = "event"
)

// ExceptionKeys are the metadata keys :telemetry.span/3 adds to an
// exception event (besides the start metadata).
var ExceptionKeys = []string{"kind", "reason", "stacktrace"}

// Contract is events.json.
type Contract struct {
	Name     string `json:"contract"`
	Version  int    `json:"version"`
	SpanRule string `json:"span_rule"`
	// Keys documents the fields of a key (from, on, required, read_by).
	Keys    map[string]string `json:"keys"`
	Events  []Event           `json:"events"`
	Metrics []Metric          `json:"metrics"`
}

// Event is one catalog event: a point event, or a span (start, stop,
// exception).
type Event struct {
	Name         string         `json:"name"`
	Kind         string         `json:"kind"`
	Description  string         `json:"description,omitempty"`
	Measurements map[string]Key `json:"measurements,omitempty"`
	Metadata     map[string]Key `json:"metadata,omitempty"`
}

// Key is a measurement or metadata key of an event.
type Key struct {
	// From is where a span's metadata key is set: "start" (the start
	// metadata; on the wire also on stop and exception, after the merge) or
	// "stop" (returned by the spanned function: stop events only). Empty for
	// point events and measurements.
	From string `json:"from,omitempty"`
	// On lists the lifecycle events of a span that carry a measurement.
	On []string `json:"on,omitempty"`
	// Required: every such event carries the key.
	Required bool `json:"required"`
	// ReadBy names the readers besides event logs, spans and metrics.
	ReadBy []string `json:"read_by,omitempty"`
}

// Metric is a built-in metric definition of the anvil receiver.
type Metric struct {
	Name        string    `json:"name"`
	Type        string    `json:"type"`
	Event       string    `json:"event"`
	Measurement string    `json:"measurement,omitempty"`
	Unit        string    `json:"unit,omitempty"`
	Buckets     []float64 `json:"buckets,omitempty"`
	Tags        []string  `json:"tags,omitempty"`
	Monotonic   bool      `json:"monotonic,omitempty"`
	Description string    `json:"description,omitempty"`
	// Capped lists the high-cardinality keys (ADR-008: labeler_id,
	// sample_id, assignment_id) this metric is tagged by on purpose; the
	// agent's cardinality guard keeps them for this metric only, under a
	// series cap (config/agent.yaml, cardinality_guard metrics::<name>).
	Capped []string `json:"capped,omitempty"`
}

var (
	once   sync.Once
	parsed *Contract
	err    error
)

// Load returns the parsed contract (parsed once; callers must not modify it).
func Load() (*Contract, error) {
	once.Do(func() {
		var c Contract
		dec := json.NewDecoder(strings.NewReader(string(raw)))
		dec.DisallowUnknownFields()
		if e := dec.Decode(&c); e != nil {
			err = fmt.Errorf("contract/events.json: %w", e)
			return
		}
		if e := c.validate(); e != nil {
			err = fmt.Errorf("contract/events.json: %w", e)
			return
		}
		parsed = &c
	})
	return parsed, err
}

// MustLoad is Load for callers that embed a contract known to be valid
// (the tests of this package parse it).
func MustLoad() *Contract {
	c, err := Load()
	if err != nil {
		panic(err)
	}
	return c
}

func (c *Contract) validate() error {
	seen := map[string]bool{}
	for i, ev := range c.Events {
		if ev.Name == "" || seen[ev.Name] {
			return fmt.Errorf("events[%d]: name %q empty or repeated", i, ev.Name)
		}
		seen[ev.Name] = true
		switch ev.Kind {
		case KindSpan:
			for k, key := range ev.Metadata {
				if key.From != Start && key.From != Stop {
					return fmt.Errorf("%s: metadata %q: from must be start or stop", ev.Name, k)
				}
			}
			for k, key := range ev.Measurements {
				if len(key.On) == 0 {
					return fmt.Errorf("%s: measurement %q: on must list start, stop or exception", ev.Name, k)
				}
			}
		case KindEvent:
			for k, key := range ev.Metadata {
				if key.From != "" {
					return fmt.Errorf("%s: metadata %q: a point event's key has no from", ev.Name, k)
				}
			}
		default:
			return fmt.Errorf("%s: kind must be span or event, not %q", ev.Name, ev.Kind)
		}
	}
	names := map[string]bool{}
	for i, m := range c.Metrics {
		if m.Name == "" || names[m.Name] {
			return fmt.Errorf("metrics[%d]: name %q empty or repeated", i, m.Name)
		}
		names[m.Name] = true
		if _, ok := c.Wire(m.Event); !ok {
			return fmt.Errorf("metrics[%d] %s: event %q is not in the contract", i, m.Name, m.Event)
		}
	}
	return nil
}

// WireEvent is one event as it travels, after a client merged a span's
// start metadata into its stop or exception event.
type WireEvent struct {
	// Name is the dotted event name (anvil.label.submit.stop).
	Name string
	// Event is the catalog entry; Lifecycle is start, stop or exception for
	// a span's events, "" for a point event.
	Event     *Event
	Lifecycle string
}

// Names lists every wire event name, in contract order (a span's start,
// stop, exception one by one).
func (c *Contract) Names() []string {
	var out []string
	for _, ev := range c.Events {
		if ev.Kind == KindSpan {
			out = append(out, ev.Name+"."+Start, ev.Name+"."+Stop, ev.Name+"."+Exception)
			continue
		}
		out = append(out, ev.Name)
	}
	return out
}

// Wire finds a wire event by its dotted name.
func (c *Contract) Wire(name string) (WireEvent, bool) {
	for i := range c.Events {
		ev := &c.Events[i]
		if ev.Name == name && ev.Kind == KindEvent {
			return WireEvent{Name: name, Event: ev}, true
		}
		if ev.Kind != KindSpan {
			continue
		}
		if rest, ok := strings.CutPrefix(name, ev.Name+"."); ok {
			switch rest {
			case Start, Stop, Exception:
				return WireEvent{Name: name, Event: ev, Lifecycle: rest}, true
			}
		}
	}
	return WireEvent{}, false
}

// Metadata returns the metadata keys this wire event carries, with whether
// each is required: a span's start keys on all three lifecycle events, its
// stop keys on stop only, :telemetry.span/3's exception keys on exception.
func (w WireEvent) Metadata() map[string]bool {
	out := map[string]bool{}
	for k, key := range w.Event.Metadata {
		switch {
		case w.Lifecycle == "":
			out[k] = key.Required
		case key.From == Start:
			out[k] = key.Required
		case key.From == Stop && w.Lifecycle == Stop:
			out[k] = key.Required
		}
	}
	if w.Lifecycle == Exception {
		for _, k := range ExceptionKeys {
			out[k] = true
		}
	}
	if w.Lifecycle != "" {
		// :telemetry.span/3 adds it; no reader needs it, so other clients
		// may leave it out.
		out["telemetry_span_context"] = false
	}
	return out
}

// Measurements returns the measurements this wire event carries, with
// whether each is required.
func (w WireEvent) Measurements() map[string]bool {
	out := map[string]bool{}
	for k, key := range w.Event.Measurements {
		if w.Lifecycle == "" || slices.Contains(key.On, w.Lifecycle) {
			out[k] = key.Required
		}
	}
	return out
}

// MetricsOf returns the catalog metrics that read the wire event name.
func (c *Contract) MetricsOf(name string) []Metric {
	var out []Metric
	for _, m := range c.Metrics {
		if m.Event == name {
			out = append(out, m)
		}
	}
	return out
}

// SortedKeys returns a map's keys in order.
func SortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Check returns the problems of one wire event against the contract (nil:
// none): an unknown event, a required measurement or metadata key that is
// missing, a measurement that is not a number.
func (c *Contract) Check(name string, measurements, metadata map[string]any) []string {
	w, ok := c.Wire(name)
	if !ok {
		return []string{fmt.Sprintf("%s: not an event of the contract", name)}
	}
	var problems []string
	for _, k := range SortedKeys(measurements) {
		switch measurements[k].(type) {
		case float64, float32, int, int64, int32, uint64, uint32, json.Number:
		default:
			problems = append(problems, fmt.Sprintf("%s: measurement %q is not a number", name, k))
		}
	}
	ms := w.Measurements()
	for _, k := range SortedKeys(ms) {
		if _, ok := measurements[k]; ms[k] && !ok {
			problems = append(problems, fmt.Sprintf("%s: required measurement %q is missing", name, k))
		}
	}
	md := w.Metadata()
	for _, k := range SortedKeys(md) {
		if _, ok := metadata[k]; md[k] && !ok {
			where := ""
			if key, ok := w.Event.Metadata[k]; ok && key.From == Start && w.Lifecycle != Start {
				where = " (set in the span's start metadata: the client must merge it into this event)"
			}
			problems = append(problems, fmt.Sprintf("%s: required metadata %q is missing%s", name, k, where))
		}
	}
	return problems
}

// NameOf returns the dotted event name of a decoded JSON event's `name`
// member: a dotted string, or an array of segments ("" for anything else).
func NameOf(name any) string {
	switch n := name.(type) {
	case string:
		return n
	case []any:
		parts := make([]string, len(n))
		for i, p := range n {
			parts[i], _ = p.(string)
		}
		return strings.Join(parts, ".")
	}
	return ""
}
