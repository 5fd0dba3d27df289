package main

import (
	"math"
	"strconv"

	"github.com/anvil/anvilcol/internal/jsonenc"
)

// kind is the type of a metadata or measurement value.
type kind uint8

const (
	kindString kind = iota
	kindInt
	kindFloat
	kindBool
)

// value is one measurement or metadata value.
type value struct {
	kind kind
	s    string
	i    int64
	f    float64
	b    bool
}

func str(s string) value    { return value{kind: kindString, s: s} }
func integer(i int64) value { return value{kind: kindInt, i: i} }
func float(f float64) value { return value{kind: kindFloat, f: f} }
func boolean(b bool) value  { return value{kind: kindBool, b: b} }
func (v value) number() (float64, bool) {
	switch v.kind {
	case kindInt:
		return float64(v.i), true
	case kindFloat:
		return v.f, true
	}
	return 0, false
}

// kv is a key and its value; events keep them in order so bodies are
// deterministic for a seed.
type kv struct {
	key string
	val value
}

// Event is one Anvil :telemetry event as AnvilCol.Forwarder sends it (wire
// protocol v1 of the anvil receiver): durations in native units (ns).
type Event struct {
	Name         string // dotted: anvil.label.submit.stop
	TimeUnixNano int64
	Measurements []kv
	Metadata     []kv
}

// measurementValue returns the named measurement, falling back to a numeric
// metadata key of that name (as Telemetry.Metrics' :measurement does for the
// anvil receiver's catalog).
func (e *Event) measurementValue(name string) (value, bool) {
	for _, m := range e.Measurements {
		if m.key == name {
			_, ok := m.val.number()
			return m.val, ok
		}
	}
	for _, m := range e.Metadata {
		if m.key == name {
			_, ok := m.val.number()
			return m.val, ok
		}
	}
	return value{}, false
}

// meta returns the metadata value of key as TelemetryMetricsStatsd renders a
// tag value (to_string), and whether it is present.
func (e *Event) meta(key string) (string, bool) {
	for _, m := range e.Metadata {
		if m.key == key {
			return formatValue(m.val), true
		}
	}
	return "", false
}

func formatValue(v value) string {
	switch v.kind {
	case kindInt:
		return strconv.FormatInt(v.i, 10)
	case kindFloat:
		return strconv.FormatFloat(v.f, 'g', -1, 64)
	case kindBool:
		return strconv.FormatBool(v.b)
	}
	return v.s
}

// appendJSON appends the event as the anvil receiver's JSON event object.
func (e *Event) appendJSON(b []byte) []byte {
	b = append(b, `{"name":`...)
	b = jsonenc.AppendString(b, e.Name)
	b = append(b, `,"time_unix_nano":`...)
	b = strconv.AppendInt(b, e.TimeUnixNano, 10)
	b = append(b, `,"measurements":`...)
	b = appendObject(b, e.Measurements)
	b = append(b, `,"metadata":`...)
	b = appendObject(b, e.Metadata)
	return append(b, '}')
}

func appendObject(b []byte, kvs []kv) []byte {
	b = append(b, '{')
	for i, m := range kvs {
		if i > 0 {
			b = append(b, ',')
		}
		b = jsonenc.AppendString(b, m.key)
		b = append(b, ':')
		b = appendJSONValue(b, m.val)
	}
	return append(b, '}')
}

func appendJSONValue(b []byte, v value) []byte {
	switch v.kind {
	case kindInt:
		return strconv.AppendInt(b, v.i, 10)
	case kindFloat:
		if math.IsNaN(v.f) || math.IsInf(v.f, 0) {
			return append(b, "null"...)
		}
		return strconv.AppendFloat(b, v.f, 'g', -1, 64)
	case kindBool:
		return strconv.AppendBool(b, v.b)
	}
	return jsonenc.AppendString(b, v.s)
}

const hexDigits = "0123456789abcdef"
