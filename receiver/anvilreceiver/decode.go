package anvilreceiver // import "github.com/anvil/anvilcol/receiver/anvilreceiver"

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
	"unsafe"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/anvil/anvilcol/internal/event"
	"github.com/anvil/anvilcol/internal/jsonscan"
	"github.com/anvil/anvilcol/internal/timeunit"
)

// Limits of the v1 wire protocol.
const (
	// maxMetadataDepth is how deep metadata may nest, counting the metadata
	// object itself as level 1.
	maxMetadataDepth = 8
	// maxMetadataKeys bounds the top-level keys of an event's metadata.
	maxMetadataKeys = 128
	// maxStringValue is the longest attribute string value kept; longer ones
	// are truncated (at a UTF-8 boundary) and counted.
	maxStringValue = 4096
	// JSON nesting anywhere in a body is bounded by jsonscan.MaxNesting (a
	// syntax limit that keeps the recursive decoder's stack small).
)

// Reasons an event is rejected (the `reason` attribute of
// otelcol_receiver_anvil_events_rejected).
const (
	reasonNotObject    = "not_object"
	reasonSyntax       = "syntax"
	reasonName         = "name"
	reasonTime         = "time"
	reasonTimeUnit     = "time_unit"
	reasonMeasurements = "measurements"
	reasonMetadata     = "metadata"
)

// measurement is one entry of an event's measurements.
type measurement struct {
	key   string
	value float64
	ival  int64
	isInt bool // the JSON literal was an integer that fits int64
}

// decodedEvent is one valid event of a request.
type decodedEvent struct {
	name         string
	timeUnixNano int64 // 0: absent (receive time is used)
	unit         timeunit.Unit
	measurements []measurement
	// record is the event's log record, decoded into directly: attrs is its
	// attributes, so that the metadata is built once.
	record plog.LogRecord
	attrs  pcommon.Map
	// traceKeys is set when the metadata holds a trace context key;
	// traceVals holds the string values of those keys (traceKeyNames order,
	// nil: absent), kept out of attrs until traceContext knows whether the
	// record's id fields carry them (parser.trace's memory).
	traceKeys bool
	traceVals [len(traceKeyNames)][]byte
	// prefix and lc are event.Split(name), set once the event is valid.
	prefix string
	lc     event.Lifecycle
}

// measurement returns the named measurement, falling back to a numeric
// metadata key of that name.
func (ev *decodedEvent) value(key string) (float64, bool) {
	for i := range ev.measurements {
		if ev.measurements[i].key == key {
			return ev.measurements[i].value, true
		}
	}
	if v, ok := ev.attrs.Get(key); ok {
		switch v.Type() {
		case pcommon.ValueTypeInt:
			return float64(v.Int()), true
		case pcommon.ValueTypeDouble:
			return v.Double(), true
		}
	}
	return 0, false
}

// eventError is one rejected event of a batch, as answered to the client.
type eventError struct {
	Index  int    `json:"index"`
	Error  string `json:"error"`
	reason string
}

// batch is a decoded request.
type batch struct {
	resource    pcommon.Map
	hasResource bool
	events      []decodedEvent
	errors      []eventError
	total       int // events seen, valid or not
	truncated   int // string values truncated

	// logs holds one log record per event seen; records of invalid events
	// are removed once the body is decoded.
	logs    plog.Logs
	records plog.LogRecordSlice
	invalid []bool
	// sizeHint is the events of the previous body decoded into this
	// (pooled) batch: the records slice is sized for as many.
	sizeHint int
}

// newEvent appends an event (and its log record) to the batch.
func (b *batch) newEvent() *decodedEvent {
	if b.logs == (plog.Logs{}) {
		b.logs = plog.NewLogs()
		b.records = b.logs.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
		b.records.EnsureCapacity(b.sizeHint)
	}
	lr := b.records.AppendEmpty()
	b.events = append(b.events, decodedEvent{record: lr, attrs: lr.Attributes()})
	b.invalid = append(b.invalid, false)
	return &b.events[len(b.events)-1]
}

// dropLast removes the last event appended (it was invalid).
func (b *batch) dropLast() {
	b.events = b.events[:len(b.events)-1]
	b.invalid[len(b.invalid)-1] = true
}

// compact removes the log records of invalid events.
func (b *batch) compact() {
	if len(b.events) == len(b.invalid) {
		return
	}
	i := 0
	b.records.RemoveIf(func(plog.LogRecord) bool {
		drop := b.invalid[i]
		i++
		return drop
	})
}

func (b *batch) reset() {
	b.sizeHint = len(b.invalid)
	b.logs = plog.Logs{}
	b.records = plog.LogRecordSlice{}
	b.invalid = b.invalid[:0]
	b.resource = pcommon.Map{}
	b.hasResource = false
	clear(b.events)
	b.events = b.events[:0]
	b.errors = b.errors[:0]
	b.total = 0
	b.truncated = 0
}

// parser is the protocol state over the JSON scanner (internal/jsonscan):
// syntax errors are returned; the first semantic error of the current event
// is kept in sem while the event is still scanned to its end, so the next
// event can be read.
type parser struct {
	jsonscan.Scanner
	sem       string
	semReason string
	truncated int
	nameBuf   []byte
	// meas is the arena of the batch's measurements; an event's are
	// meas[measStart:] while it is read.
	meas      []measurement
	measStart int
	// trace is the arena of the batch's trace-context values.
	trace []byte
}

func (p *parser) reset(b []byte) {
	p.Scanner.Reset(b)
	p.sem, p.semReason = "", ""
	p.truncated = 0
}

func (p *parser) setSem(reason, format string, args ...any) {
	if p.sem == "" {
		p.sem, p.semReason = fmt.Sprintf(format, args...), reason
	}
}

// requestError is a whole-request failure: its status and a message naming the
// problem.
type requestError struct {
	status int
	msg    string
}

func (e *requestError) Error() string { return e.msg }

// decoder decodes request bodies. It is not safe for concurrent use; the
// receiver pools them.
type decoder struct {
	maxEvents int
	p         parser
}

func newDecoder(maxEvents int) *decoder {
	return &decoder{maxEvents: maxEvents}
}

// decodeJSON decodes an application/json body: {"resource": {...}, "events":
// [...]} or a bare array of events.
func (d *decoder) decodeJSON(body []byte, out *batch) error {
	p := &d.p
	p.meas, p.trace = p.meas[:0], p.trace[:0]
	p.reset(body)
	p.WS()
	if p.I >= len(p.B) {
		return &requestError{http.StatusBadRequest, "empty body: want a JSON object {\"events\": [...]} or an array of events"}
	}
	var err error
	switch p.B[p.I] {
	case '[':
		err = d.readEvents(out)
	case '{':
		err = d.readEnvelope(out)
	default:
		return &requestError{http.StatusBadRequest, "body must be a JSON object {\"events\": [...]} or an array of events"}
	}
	if err == nil {
		if p.WS(); p.I < len(p.B) {
			err = p.SyntaxErr("unexpected data after the JSON value")
		}
	}
	var se *jsonscan.SyntaxError
	if errors.As(err, &se) {
		return &requestError{http.StatusBadRequest, se.Error()}
	}
	if err != nil {
		return err
	}
	out.compact()
	return nil
}

func (d *decoder) readEnvelope(out *batch) error {
	p := &d.p
	if p.Open('}') {
		return nil
	}
	for {
		key, err := p.Key()
		if err != nil {
			return err
		}
		switch string(key) {
		case "events":
			if p.I >= len(p.B) || p.B[p.I] != '[' {
				return &requestError{http.StatusBadRequest, fmt.Sprintf("\"events\" must be an array (byte %d)", p.I)}
			}
			if err = d.readEvents(out); err != nil {
				return err
			}
		case "resource":
			if p.I >= len(p.B) || p.B[p.I] != '{' {
				return &requestError{http.StatusBadRequest, fmt.Sprintf("\"resource\" must be an object (byte %d)", p.I)}
			}
			out.resource = pcommon.NewMap()
			out.hasResource = true
			v := pcommon.NewValueEmpty()
			p.sem = ""
			if err = p.readValue(v, 0); err != nil {
				return err
			}
			if p.sem != "" {
				return &requestError{http.StatusBadRequest, "resource: " + p.sem}
			}
			v.Map().MoveTo(out.resource)
			out.truncated += p.truncated
			p.truncated = 0
		default:
			if err = p.SkipValue(0); err != nil {
				return err
			}
		}
		if more, err := p.Next('}'); !more || err != nil {
			return err
		}
	}
}

func (d *decoder) readEvents(out *batch) error {
	p := &d.p
	if p.Open(']') {
		return nil
	}
	for {
		if out.total >= d.maxEvents {
			return d.tooMany()
		}
		index := out.total
		out.total++
		ev := out.newEvent()
		if err := p.readEvent(ev); err != nil {
			out.dropLast()
			return err
		}
		if !d.finish(out, ev, index) {
			out.dropLast()
		}
		if more, err := p.Next(']'); !more || err != nil {
			return err
		}
	}
}

// decodeNDJSON decodes an application/x-ndjson body: one event per line. A
// line that is not valid JSON rejects that event only.
func (d *decoder) decodeNDJSON(body []byte, out *batch) error {
	p := &d.p
	p.meas, p.trace = p.meas[:0], p.trace[:0]
	for len(body) > 0 {
		line := body
		if nl := bytes.IndexByte(body, '\n'); nl >= 0 {
			line, body = body[:nl], body[nl+1:]
		} else {
			body = nil
		}
		p.reset(line)
		p.WS()
		if p.I == len(line) {
			continue // blank line
		}
		if out.total >= d.maxEvents {
			return d.tooMany()
		}
		index := out.total
		out.total++
		ev := out.newEvent()
		err := p.readEvent(ev)
		if err == nil {
			p.WS()
			if p.I < len(p.B) {
				err = p.SyntaxErr("unexpected data after the event")
			}
		}
		if err != nil {
			out.dropLast()
			out.errors = append(out.errors, eventError{Index: index, Error: err.Error(), reason: reasonSyntax})
			p.truncated = 0
			continue
		}
		if !d.finish(out, ev, index) {
			out.dropLast()
		}
	}
	out.compact()
	return nil
}

func (d *decoder) tooMany() error {
	return &requestError{http.StatusRequestEntityTooLarge,
		fmt.Sprintf("more than max_events_per_request (%d) events in one request: split the batch", d.maxEvents)}
}

// finish checks a syntactically complete event; it records the error and
// returns false when the event is invalid.
func (d *decoder) finish(out *batch, ev *decodedEvent, index int) bool {
	p := &d.p
	if p.sem == "" && ev.name == "" {
		p.sem, p.semReason = "name is required", reasonName
	}
	if p.sem != "" {
		out.errors = append(out.errors, eventError{Index: index, Error: p.sem, reason: p.semReason})
		p.truncated = 0
		return false
	}
	ev.measurements = p.meas[p.measStart:len(p.meas):len(p.meas)]
	ev.prefix, ev.lc = event.Split(ev.name)
	out.truncated += p.truncated
	p.truncated = 0
	return true
}

// readEvent reads one event object into ev.
func (p *parser) readEvent(ev *decodedEvent) error {
	p.measStart = len(p.meas)
	p.sem, p.semReason = "", ""
	p.truncated = 0
	if p.I >= len(p.B) {
		return p.SyntaxErr("unexpected end of input")
	}
	if p.B[p.I] != '{' {
		p.setSem(reasonNotObject, "event must be a JSON object")
		return p.SkipValue(0)
	}
	if p.Open('}') {
		return nil
	}
	for {
		key, err := p.Key()
		if err != nil {
			return err
		}
		switch string(key) {
		case "name":
			err = p.readName(ev)
		case "time":
			err = p.readTime(ev)
		case "time_unix_nano":
			err = p.readTimeUnixNano(ev)
		case "time_unit":
			err = p.readTimeUnit(ev)
		case "measurements":
			err = p.readMeasurements(ev)
		case "metadata":
			err = p.readMetadata(ev)
		default: // unknown members are ignored (forward compatibility)
			err = p.SkipValue(0)
		}
		if err != nil {
			return err
		}
		if more, err := p.Next('}'); !more || err != nil {
			return err
		}
	}
}

func (p *parser) readName(ev *decodedEvent) error {
	switch p.Peek() {
	case '"':
		raw, err := p.ReadStringRaw()
		if err != nil {
			return err
		}
		name := p.Str(raw)
		if name == "" {
			p.setSem(reasonName, "name must not be empty")
			return nil
		}
		if name[0] == '.' || name[len(name)-1] == '.' || strings.Contains(name, "..") {
			p.setSem(reasonName, "name %q has an empty segment", name)
			return nil
		}
		ev.name = name
		return nil
	case '[':
		// The segments are joined as they are read: one interned string per
		// name, no per-event allocation.
		p.I++
		p.WS()
		joined := p.nameBuf[:0]
		n := 0
		if !p.Consume(']') {
			for {
				if p.Peek() != '"' {
					p.setSem(reasonName, "name segment %d must be a string", n)
					if err := p.SkipValue(1); err != nil {
						return err
					}
				} else {
					raw, err := p.ReadStringRaw()
					if err != nil {
						return err
					}
					if len(raw) == 0 {
						p.setSem(reasonName, "name segment %d is empty", n)
					}
					if n > 0 {
						joined = append(joined, '.')
					}
					joined = append(joined, raw...)
				}
				n++
				more, err := p.Next(']')
				if err != nil {
					return err
				}
				if !more {
					break
				}
			}
		}
		p.nameBuf = joined
		if n == 0 {
			p.setSem(reasonName, "name must not be empty")
			return nil
		}
		ev.name = p.Str(joined)
		return nil
	}
	p.setSem(reasonName, "name must be a string or an array of strings")
	return p.SkipValue(0)
}

func (p *parser) readTime(ev *decodedEvent) error {
	if p.Peek() != '"' {
		p.setSem(reasonTime, "time must be an RFC 3339 string")
		return p.SkipValue(0)
	}
	raw, err := p.ReadStringRaw()
	if err != nil {
		return err
	}
	if ns, ok := parseUTCTime(raw); ok {
		ev.timeUnixNano = ns
		return nil
	}
	t, perr := time.Parse(time.RFC3339Nano, unsafe.String(unsafe.SliceData(raw), len(raw)))
	if perr != nil {
		p.setSem(reasonTime, "time %q is not RFC 3339 (e.g. 2026-05-01T12:00:00.123456Z)", string(raw))
		return nil
	}
	if t.Year() < 1970 || t.Year() > maxYear || t.UnixNano() <= 0 {
		p.setSem(reasonTime, "time %q is out of range (1970 to %d)", string(raw), maxYear)
		return nil
	}
	ev.timeUnixNano = t.UnixNano()
	return nil
}

func (p *parser) readTimeUnixNano(ev *decodedEvent) error {
	var lit []byte
	switch c := p.Peek(); {
	case c == '"':
		raw, err := p.ReadStringRaw()
		if err != nil {
			return err
		}
		lit = raw
	case c == '-' || (c >= '0' && c <= '9'):
		start := p.I
		if _, _, _, err := p.ReadNumber(); err != nil {
			return err
		}
		lit = p.B[start:p.I]
	default:
		p.setSem(reasonTime, "time_unix_nano must be an integer")
		return p.SkipValue(0)
	}
	n, err := strconv.ParseInt(unsafe.String(unsafe.SliceData(lit), len(lit)), 10, 64)
	if err != nil || n <= 0 {
		p.setSem(reasonTime, "time_unix_nano %q must be a positive integer of nanoseconds since the Unix epoch", string(lit))
		return nil
	}
	ev.timeUnixNano = n
	return nil
}

func (p *parser) readTimeUnit(ev *decodedEvent) error {
	if p.Peek() != '"' {
		p.setSem(reasonTimeUnit, "time_unit must be a string")
		return p.SkipValue(0)
	}
	raw, err := p.ReadStringRaw()
	if err != nil {
		return err
	}
	u, perr := timeunit.Parse(unsafe.String(unsafe.SliceData(raw), len(raw)))
	if perr != nil {
		p.setSem(reasonTimeUnit, "time_unit: %v", perr)
		return nil
	}
	ev.unit = u
	return nil
}

func (p *parser) readMeasurements(ev *decodedEvent) error {
	if p.Peek() != '{' {
		p.setSem(reasonMeasurements, "measurements must be an object of numbers")
		return p.SkipValue(0)
	}
	if p.Open('}') {
		return nil
	}
	for {
		raw, err := p.Key()
		if err != nil {
			return err
		}
		key := p.Str(raw)
		if c := p.Peek(); c == '-' || (c >= '0' && c <= '9') {
			f, iv, isInt, err := p.ReadNumber()
			if err != nil {
				return err
			}
			switch {
			case math.IsInf(f, 0) || math.IsNaN(f):
				p.setSem(reasonMeasurements, "measurements.%s is not a finite number", key)
			default:
				p.meas = append(p.meas, measurement{key: key, value: f, ival: iv, isInt: isInt})
			}
		} else {
			p.setSem(reasonMeasurements, "measurements.%s must be a number", key)
			if err = p.SkipValue(1); err != nil {
				return err
			}
		}
		if more, err := p.Next('}'); !more || err != nil {
			return err
		}
	}
}

func (p *parser) readMetadata(ev *decodedEvent) error {
	if p.Peek() != '{' {
		p.setSem(reasonMetadata, "metadata must be an object")
		return p.SkipValue(0)
	}
	if p.Open('}') {
		return nil
	}
	// Size the map once, exactly: a quick count of the members, plus room
	// for the exception attributes of an exception event named before its metadata.
	size := min(jsonscan.CountMembers(p.B, p.I), maxMetadataKeys)
	if ev.name != "" && event.IsException(ev.name) {
		size += 3
	}
	ev.attrs.EnsureCapacity(size)
	n := 0
	for {
		raw, err := p.Key()
		if err != nil {
			return err
		}
		n++
		if n > maxMetadataKeys {
			p.setSem(reasonMetadata, "metadata has more than %d keys", maxMetadataKeys)
		}
		if p.sem != "" {
			err = p.SkipValue(1)
		} else {
			key := p.Str(raw)
			switch k := traceKeyIndex(key); {
			case k >= 0 && p.Peek() == '"':
				ev.traceKeys = true
				err = p.readTraceValue(ev, k, key)
			case k >= 0: // not a string: no trace context, a plain attribute
				ev.traceVals[k] = nil
				err = p.putValue(ev.attrs, key, 1)
			default:
				err = p.putValue(ev.attrs, key, 1)
			}
		}
		if err != nil {
			return err
		}
		if more, err := p.Next('}'); !more || err != nil {
			return err
		}
	}
}

// maxTraceValue is the longest trace-context value kept aside (a version-00
// traceparent is 55 bytes; later versions may append fields); longer ones
// cannot be ids and are plain attributes.
const maxTraceValue = 128

// readTraceValue reads the string value of trace-context key k (index into
// traceKeyNames) into the parser's arena; the value becomes an attribute only
// if the record's id fields do not carry it (restoreTraceKeys).
func (p *parser) readTraceValue(ev *decodedEvent, k int, key string) error {
	raw, err := p.ReadStringRaw()
	if err != nil {
		return err
	}
	if len(raw) > maxTraceValue {
		ev.traceVals[k] = nil
		ev.attrs.PutStr(key, p.Str(raw))
		return nil
	}
	if _, ok := ev.attrs.Get(key); ok { // a non-string value of the same key came first
		ev.attrs.Remove(key)
	}
	off := len(p.trace)
	p.trace = append(p.trace, raw...)
	ev.traceVals[k] = p.trace[off:len(p.trace):len(p.trace)]
	return nil
}

// readStrValue reads a JSON string value, truncated to maxStringValue bytes
// (at a UTF-8 boundary, counted).
func (p *parser) readStrValue() (string, error) {
	raw, err := p.ReadStringRaw()
	if err != nil {
		return "", err
	}
	if len(raw) > maxStringValue {
		n := maxStringValue
		for n > 0 && !utf8.RuneStart(raw[n]) {
			n--
		}
		raw = raw[:n]
		p.truncated++
	}
	return p.Str(raw), nil
}

// putValue reads any JSON value into m[key]; depth is the nesting level of
// m. Strings and integers, the common metadata values, are put directly.
func (p *parser) putValue(m pcommon.Map, key string, depth int) error {
	switch c := p.Peek(); {
	case c == '"':
		sv, err := p.readStrValue()
		if err != nil {
			return err
		}
		m.PutStr(key, sv)
		return nil
	case c == '-' || (c >= '0' && c <= '9'):
		f, iv, isInt, err := p.ReadNumber()
		if err != nil {
			return err
		}
		switch {
		case isInt:
			m.PutInt(key, iv)
		case math.IsInf(f, 0):
			p.setSem(reasonMetadata, "metadata holds a number out of range")
			m.PutEmpty(key)
		default:
			m.PutDouble(key, f)
		}
		return nil
	}
	return p.readValue(m.PutEmpty(key), depth)
}

// readValue reads any JSON value into v; depth is the nesting level of the
// container v sits in (metadata = 1).
func (p *parser) readValue(v pcommon.Value, depth int) error {
	switch c := p.Peek(); {
	case c == '"':
		sv, err := p.readStrValue()
		if err != nil {
			return err
		}
		v.SetStr(sv)
	case c == '-' || (c >= '0' && c <= '9'):
		f, iv, isInt, err := p.ReadNumber()
		if err != nil {
			return err
		}
		switch {
		case isInt:
			v.SetInt(iv)
		case math.IsInf(f, 0):
			p.setSem(reasonMetadata, "metadata holds a number out of range")
		default:
			v.SetDouble(f)
		}
	case c == 't':
		if err := p.Literal("true"); err != nil {
			return err
		}
		v.SetBool(true)
	case c == 'f':
		if err := p.Literal("false"); err != nil {
			return err
		}
		v.SetBool(false)
	case c == 'n':
		return p.Literal("null") // an empty value
	case c == '{', c == '[':
		if depth >= maxMetadataDepth {
			p.setSem(reasonMetadata, "metadata is nested deeper than %d levels", maxMetadataDepth)
		}
		if p.sem != "" {
			return p.SkipValue(depth)
		}
		if c == '{' {
			return p.readObjectInto(v.SetEmptyMap(), depth+1)
		}
		return p.readArrayInto(v.SetEmptySlice(), depth+1)
	default:
		if p.I >= len(p.B) {
			return p.SyntaxErr("unexpected end of input")
		}
		return p.SyntaxErr(fmt.Sprintf("unexpected character %q", c))
	}
	return nil
}

func (p *parser) readObjectInto(m pcommon.Map, depth int) error {
	if p.Open('}') {
		return nil
	}
	for {
		raw, err := p.Key()
		if err != nil {
			return err
		}
		if p.sem != "" {
			err = p.SkipValue(depth)
		} else {
			err = p.putValue(m, p.Str(raw), depth)
		}
		if err != nil {
			return err
		}
		if more, err := p.Next('}'); !more || err != nil {
			return err
		}
	}
}

func (p *parser) readArrayInto(s pcommon.Slice, depth int) error {
	if p.Open(']') {
		return nil
	}
	for {
		var err error
		if p.sem != "" {
			err = p.SkipValue(depth)
		} else {
			err = p.readValue(s.AppendEmpty(), depth)
		}
		if err != nil {
			return err
		}
		if more, err := p.Next(']'); !more || err != nil {
			return err
		}
	}
}
