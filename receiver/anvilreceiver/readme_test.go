package anvilreceiver

import (
	"flag"
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/anvil/anvilcol/contract"
)

var updateREADME = flag.Bool("update", false, "rewrite the README sections generated from contract/events.json")

// The README's event contract and built-in catalog tables are generated from
// contract/events.json: `go test ./receiver/anvilreceiver/ -run TestREADME -update`
// rewrites them.
func TestREADMEIsGeneratedFromTheContract(t *testing.T) {
	raw, err := os.ReadFile("README.md")
	require.NoError(t, err)
	readme := string(raw)
	c := contract.MustLoad()
	for _, s := range []struct{ name, text string }{
		{"contract", contractTables(c)},
		{"catalog", catalogTable(c)},
	} {
		begin, end := "<!-- "+s.name+":begin -->\n", "<!-- "+s.name+":end -->"
		i := strings.Index(readme, begin)
		j := strings.Index(readme, end)
		require.True(t, i >= 0 && j > i, "README.md: no %q ... %q section", begin, end)
		got := readme[i+len(begin) : j]
		if *updateREADME {
			readme = readme[:i+len(begin)] + s.text + readme[j:]
			continue
		}
		if got != s.text {
			t.Errorf("README.md: the %s section differs from contract/events.json; "+
				"run go test ./receiver/anvilreceiver/ -run TestREADME -update\n--- README\n%s\n--- generated\n%s", s.name, got, s.text)
		}
	}
	if *updateREADME && readme != string(raw) {
		require.NoError(t, os.WriteFile("README.md", []byte(readme), 0o644))
	}
}

// contractTables renders the contract's events: spans, then point events;
// per key whether it is required on each wire event and what reads it.
func contractTables(c *contract.Contract) string {
	var b strings.Builder
	b.WriteString("Spans (`name` is the span; its events are `name.start`, `name.stop`, `name.exception`):\n\n")
	b.WriteString("| span | key | kind | `.start` | `.stop` | `.exception` | read by |\n|---|---|---|---|---|---|---|\n")
	lifecycles := []string{contract.Start, contract.Stop, contract.Exception}
	for i := range c.Events {
		ev := &c.Events[i]
		if ev.Kind != contract.KindSpan {
			continue
		}
		wire := map[string]contract.WireEvent{}
		for _, lc := range lifecycles {
			wire[lc], _ = c.Wire(ev.Name + "." + lc)
		}
		row := func(k string, isMeasurement bool, kind string) {
			cells := make([]string, 0, 3)
			var readers []string
			for _, lc := range lifecycles {
				w := wire[lc]
				keys := w.Metadata()
				if isMeasurement {
					keys = w.Measurements()
				}
				required, on := keys[k]
				switch {
				case !on:
					cells = append(cells, "")
				case required:
					cells = append(cells, "required")
				default:
					cells = append(cells, "optional")
				}
				if on {
					readers = append(readers, metricReaders(c, w, k, lc)...)
				}
			}
			key := ev.Metadata[k]
			if isMeasurement {
				key = ev.Measurements[k]
			}
			fmt.Fprintf(&b, "| `%s` | `%s` | %s | %s | %s |\n", ev.Name, k, kind, strings.Join(cells, " | "),
				readBy(readers, key.ReadBy))
		}
		for _, k := range contract.SortedKeys(ev.Measurements) {
			row(k, true, "measurement")
		}
		for _, from := range []string{contract.Start, contract.Stop} {
			for _, k := range contract.SortedKeys(ev.Metadata) {
				if ev.Metadata[k].From == from {
					row(k, false, "metadata, set at "+from)
				}
			}
		}
	}

	b.WriteString("\nPoint events:\n\n")
	b.WriteString("| event | key | kind | presence | read by |\n|---|---|---|---|---|\n")
	var notes []string
	for i := range c.Events {
		ev := &c.Events[i]
		if ev.Kind != contract.KindEvent {
			continue
		}
		if ev.Description != "" {
			notes = append(notes, fmt.Sprintf("- `%s`: %s\n", ev.Name, ev.Description))
		}
		w, _ := c.Wire(ev.Name)
		row := func(k string, key contract.Key, kind string) {
			req := "optional"
			if key.Required {
				req = "required"
			}
			fmt.Fprintf(&b, "| `%s` | `%s` | %s | %s | %s |\n", ev.Name, k, kind, req,
				readBy(metricReaders(c, w, k, ""), key.ReadBy))
		}
		for _, k := range contract.SortedKeys(ev.Measurements) {
			row(k, ev.Measurements[k], "measurement")
		}
		for _, k := range contract.SortedKeys(ev.Metadata) {
			row(k, ev.Metadata[k], "metadata")
		}
	}
	if len(notes) > 0 {
		b.WriteString("\n")
		for _, n := range notes {
			b.WriteString(n)
		}
	}
	return b.String()
}

// metricReaders names the catalog metrics that read key on wire event w: as
// a tag, or as the value (a measurement, or the metadata it falls back to).
func metricReaders(c *contract.Contract, w contract.WireEvent, key, lifecycle string) []string {
	var out []string
	for _, m := range c.MetricsOf(w.Name) {
		var how []string
		if lifecycle != "" {
			how = append(how, lifecycle)
		}
		switch {
		case slices.Contains(m.Tags, key):
			how = append(how, "tag")
		case contractMetricType(m) != TypeCounter && m.Measurement == key:
		default:
			continue
		}
		r := "`" + m.Name + "`"
		if len(how) > 0 {
			r += " (" + strings.Join(how, ", ") + ")"
		}
		out = append(out, r)
	}
	return out
}

func readBy(metrics, others []string) string {
	return strings.Join(append(slices.Clone(metrics), others...), "; ")
}

// contractMetricType parses a contract metric's type; the catalog's tests
// (TestCatalogIsValid) report an unknown one.
func contractMetricType(m contract.Metric) MetricType {
	mt, err := parseMetricType(m.Type)
	if err != nil {
		panic(fmt.Sprintf("contract metric %s: %v", m.Name, err))
	}
	return mt
}

// catalogTable renders the contract's metrics as the README's catalog table.
func catalogTable(c *contract.Contract) string {
	var b strings.Builder
	b.WriteString("| metric | type | event | measurement, unit | tags | description |\n|---|---|---|---|---|---|\n")
	for _, m := range c.Metrics {
		typ := m.Type
		mt := contractMetricType(m)
		switch mt {
		case TypeSum:
			if m.Monotonic {
				typ += " (monotonic)"
			}
		case TypeDistribution:
			buckets := m.Buckets
			if len(buckets) == 0 {
				buckets = defaultBuckets
			}
			typ += " " + floats(buckets)
		case TypeSummary:
			typ += " " + floats(defaultQuantiles)
		}
		var value []string
		if mt != TypeCounter {
			v := "`" + m.Measurement + "`"
			w, _ := c.Wire(m.Event)
			if _, ok := w.Measurements()[m.Measurement]; !ok {
				v += " (metadata)"
			}
			value = append(value, v)
		}
		if m.Unit != "" {
			value = append(value, "`"+m.Unit+"`")
		}
		tags := make([]string, len(m.Tags))
		for i, tag := range m.Tags {
			tags[i] = "`" + tag + "`"
		}
		fmt.Fprintf(&b, "| `%s` | %s | `%s` | %s | %s | %s |\n", m.Name, typ, m.Event,
			strings.Join(value, ", "), strings.Join(tags, ", "), m.Description)
	}
	return b.String()
}

// floats renders bounds as [a, b, ...]; a bound just below a short number
// (math.Nextafter(0.4, 0)) shows as that number with ⁻ (0.4⁻).
func floats(fs []float64) string {
	out := make([]string, len(fs))
	for i, f := range fs {
		s := strconv.FormatFloat(f, 'g', -1, 64)
		if up := strconv.FormatFloat(math.Nextafter(f, math.Inf(1)), 'g', -1, 64); len(s) > 12 && len(up) <= 6 {
			s = up + "⁻"
		}
		out[i] = s
	}
	return "[" + strings.Join(out, ", ") + "]"
}
