package main

import (
	"math"
	"strconv"
	"strings"
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
// same names, events, measurements, units and tags as the anvil receiver's
// built-in catalog (receiver/anvilreceiver/README.md, "Built-in catalog"), so
// the statsd path carries the same metrics the anvil path aggregates.
var adr008 = []statsdMetric{
	{"anvil.queue.created.count", "counter", "anvil.queue.created", "", 0, nil},
	{"anvil.label.submit.count", "counter", "anvil.label.submit.stop", "", 0, []string{"queue_id", "schema_version_id"}},
	{"anvil.label.validation_failed.count", "counter", "anvil.label.validation_failed", "", 0, []string{"schema_version_id"}},
	{"anvil.label.submit.exception.count", "counter", "anvil.label.submit.exception", "", 0, []string{"queue_id"}},
	{"anvil.assignment.dispatch.exception.count", "counter", "anvil.assignment.dispatch.exception", "", 0, []string{"policy_type"}},
	{"anvil.export.generate.exception.count", "counter", "anvil.export.generate.exception", "", 0, []string{"format"}},
	{"anvil.auth.login_success.count", "counter", "anvil.auth.login_success", "", 0, []string{"provider"}},
	{"anvil.auth.login_failed.count", "counter", "anvil.auth.login_failed", "", 0, []string{"provider", "reason"}},
	{"anvil.auth.access_denied.count", "counter", "anvil.auth.access_denied", "", 0, []string{"action", "reason"}},
	{"anvil.policy.requeue.count", "counter", "anvil.policy.requeue", "", 0, []string{"reason"}},
	{"anvil.agreement.low_score.count", "counter", "anvil.agreement.low_score", "", 0, []string{"dimension"}},
	{"anvil.export.pii_detected.count", "counter", "anvil.export.pii_detected", "", 0, []string{"pattern"}},
	{"anvil.assignment.timed_out.count", "sum", "anvil.assignment.timed_out", "count", 0, []string{"queue_id"}},
	{"anvil.assignment.dispatch.duration", "distribution", "anvil.assignment.dispatch.stop", "duration", nsToMs, []string{"policy_type"}},
	{"anvil.label.submit.duration", "distribution", "anvil.label.submit.stop", "duration", nsToMs, []string{"queue_id"}},
	{"anvil.agreement.compute.duration", "distribution", "anvil.agreement.compute.stop", "duration", nsToMs, []string{"metric"}},
	{"anvil.export.generate.duration", "distribution", "anvil.export.generate.stop", "duration", nsToS, []string{"format"}},
	{"anvil.policy.select_assignment.duration", "distribution", "anvil.policy.select_assignment.stop", "duration", nsToMs, []string{"policy_type"}},
	{"anvil.agreement.low_score.distribution", "distribution", "anvil.agreement.low_score", "value", 0, []string{"dimension"}},
	{"anvil.agreement.low_score.value", "summary", "anvil.agreement.low_score", "value", 0, []string{"dimension"}},
	{"anvil.export.progress.progress_pct", "last_value", "anvil.export.progress", "progress_pct", 0, []string{"export_id"}},
}

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
