package main

import (
	"math"
	"strconv"
	"strings"

	"github.com/anvil/anvilcol/contract"
)

// statsdMetric is one Telemetry.Metrics definition as an Anvil node would
// hand it to TelemetryMetricsStatsd (formatter: :datadog).
type statsdMetric struct {
	name        string   // metric name, also the StatsD name
	kind        string   // counter, sum, last_value, summary, distribution
	event       string   // dotted event name
	measurement string   // measurement read (metadata fallback, as the anvil catalog does)
	scale       float64  // divisor converting the native unit (ns) as Telemetry.Metrics does; 0 = none
	tags        []string // metadata keys, in order
}

// Unit conversions of Telemetry.Metrics' `unit: {:native, :millisecond}` and
// `{:native, :second}` for a BEAM whose native unit is the nanosecond.
const (
	nsToMs = 1e6
	nsToS  = 1e9
)

// adr008 is ADR-008's metric definitions, bound to the events Anvil fires: the
// anvil receiver's built-in catalog as contract/events.json defines it (the
// same names, events, measurements, units and tags), so the statsd path
// carries the same metrics the anvil path aggregates. The forwarder's own
// report is left out: TelemetryMetricsStatsd has no such thing.
var adr008 = func() []statsdMetric {
	var out []statsdMetric
	for _, m := range contract.MustLoad().Metrics {
		if strings.HasPrefix(m.Event, "anvil.forwarder.") {
			continue
		}
		d := statsdMetric{name: m.Name, kind: m.Type, event: m.Event, measurement: m.Measurement, tags: m.Tags}
		switch m.Unit {
		case "ms":
			d.scale = nsToMs
		case "s":
			d.scale = nsToS
		}
		out = append(out, d)
	}
	return out
}()

// statsdByEvent indexes adr008 by event name (TelemetryMetricsStatsd attaches
// one handler per event and formats each of its metrics).
var statsdByEvent = func() map[string][]*statsdMetric {
	m := map[string][]*statsdMetric{}
	for i := range adr008 {
		d := &adr008[i]
		m[d.event] = append(m[d.event], d)
	}
	return m
}()

// appendStatsdLines appends the DogStatsD lines TelemetryMetricsStatsd emits
// for e, each followed by '\n' (the reporter's packet separator), and returns
// how many lines it appended. An event no definition reads emits nothing; a
// definition whose measurement the event lacks is skipped (Telemetry.Metrics
// drops such an update).
func appendStatsdLines(b []byte, e *Event) ([]byte, int) {
	n := 0
	for _, d := range statsdByEvent[e.Name] {
		var v float64
		isFloat := d.scale != 0
		if d.kind != "counter" {
			raw, ok := e.measurementValue(d.measurement)
			if !ok {
				continue
			}
			v, _ = raw.number()
			isFloat = isFloat || raw.kind == kindFloat
			if d.scale != 0 {
				v /= d.scale
			}
		}
		b = append(b, d.name...)
		b = append(b, ':')
		switch d.kind {
		case "counter":
			b = append(b, "1|c"...)
		case "sum":
			b = appendElixirNumber(b, v, isFloat)
			b = append(b, "|c"...)
		case "last_value":
			b = appendElixirNumber(b, v, isFloat)
			b = append(b, "|g"...)
		case "summary":
			// The :datadog formatter reports a summary as a DogStatsD histogram.
			b = appendElixirNumber(b, v, isFloat)
			b = append(b, "|h"...)
		case "distribution":
			b = appendElixirNumber(b, v, isFloat)
			b = append(b, "|d"...)
		}
		for i, tag := range d.tags {
			if i == 0 {
				b = append(b, "|#"...)
			} else {
				b = append(b, ',')
			}
			val, _ := e.meta(tag) // a missing tag is rendered empty
			b = append(b, tag...)
			b = append(b, ':')
			b = append(b, val...)
		}
		b = append(b, '\n')
		n++
	}
	return b, n
}

// appendElixirNumber renders v as Elixir's to_string does: integers stay
// integral (`3`), floats (unit-converted values included) print in shortest
// form with a fraction (`42.0`, `0.123`).
func appendElixirNumber(b []byte, v float64, isFloat bool) []byte {
	if !isFloat && v == math.Trunc(v) && math.Abs(v) < 1e15 {
		return strconv.AppendInt(b, int64(v), 10)
	}
	start := len(b)
	b = strconv.AppendFloat(b, v, 'g', -1, 64)
	if !strings.ContainsAny(string(b[start:]), ".eEn") {
		b = append(b, ".0"...)
	}
	return b
}
