// Package event holds the Anvil event naming shared by every anvilcol component
// (see ARCHITECTURE.md, "Events: one naming, in every signal"): how an event's
// dotted name is read from a log record or a span, and how `:telemetry.span/3`
// lifecycle suffixes map to span names.
package event // import "github.com/anvil/anvilcol/internal/event"

import (
	"strings"

	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// AttrEventName is the attribute that carries an event's name on log records
// whose EventName field is empty (older SDKs and bridges put it there).
const AttrEventName = "event.name"

// Lifecycle suffixes emitted by :telemetry.span/3.
const (
	SuffixStart     = "start"
	SuffixStop      = "stop"
	SuffixException = "exception"
)

// Lifecycle tells which part of a :telemetry.span/3 an event is.
type Lifecycle int

const (
	// Point is an event that is not part of a span (e.g. anvil.queue.created).
	Point Lifecycle = iota
	// Start is a `...start` event.
	Start
	// Stop is a `...stop` event.
	Stop
	// Exception is a `...exception` event.
	Exception
)

// LogName returns the event name of a log record: its EventName, falling back
// to the `event.name` attribute; "" when it has neither.
func LogName(lr plog.LogRecord) string {
	if n := lr.EventName(); n != "" {
		return n
	}
	if v, ok := lr.Attributes().Get(AttrEventName); ok {
		return v.AsString()
	}
	return ""
}

// Split returns the span prefix of an event name and its lifecycle:
// "anvil.label.submit.stop" -> ("anvil.label.submit", Stop). Point events are
// returned unchanged with Point.
func Split(name string) (prefix string, lc Lifecycle) {
	i := strings.LastIndexByte(name, '.')
	if i <= 0 {
		return name, Point
	}
	switch name[i+1:] {
	case SuffixStart:
		return name[:i], Start
	case SuffixStop:
		return name[:i], Stop
	case SuffixException:
		return name[:i], Exception
	}
	return name, Point
}

// IsException reports whether the event ends a span with an exception.
func IsException(name string) bool {
	_, lc := Split(name)
	return lc == Exception
}

// End says whether a named item is a span and how it ended.
type End uint8

const (
	// NotSpan is a log record (or any item known by one name).
	NotSpan End = iota
	// SpanStop is a span that ended normally: the event `<name>.stop`.
	SpanStop
	// SpanException is a span with status Error: the event `<name>.exception`.
	SpanException
)

// Key is what every component selects an item by: its name and, for a span,
// how it ended. A log record is the event its name says; a span named
// "anvil.export.generate" is the event "anvil.export.generate.stop" or
// "anvil.export.generate.exception" by its status, as :telemetry.span/3
// emits it (the anvil receiver builds a span from each such event).
type Key struct {
	Name string
	End  End
}

// LogKey is the key of a log record: its event name (LogName).
func LogKey(lr plog.LogRecord) Key { return Key{Name: LogName(lr)} }

// SpanKey is the key of a span: its name and its status.
func SpanKey(s ptrace.Span) Key {
	if s.Status().Code() == ptrace.StatusCodeError {
		return Key{Name: s.Name(), End: SpanException}
	}
	return Key{Name: s.Name(), End: SpanStop}
}

// Event is the name of the event the item is: the log record's name, or the
// span's name with the suffix of the event that ended it. It allocates for
// spans; callers cache it per key.
func (k Key) Event() string {
	switch k.End {
	case SpanStop:
		return k.Name + "." + SuffixStop
	case SpanException:
		return k.Name + "." + SuffixException
	}
	return k.Name
}

// Names are the names a pattern may match to select the item: its name, and
// for a span also its event name, so `anvil.export.generate`,
// `anvil.export.*` and `*.exception` all select a failed generate span.
func (k Key) Names() []string {
	if k.End == NotSpan {
		return []string{k.Name}
	}
	return []string{k.Name, k.Event()}
}
