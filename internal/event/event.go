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

// SpanName returns the event name of a span, which is its name.
func SpanName(s ptrace.Span) string { return s.Name() }

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
