package anvilreceiver

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"

	"github.com/anvil/anvilcol/receiver/anvilreceiver/internal/metadatatest"
)

// sampleEvent is an event of the shipped sample batch, read with
// encoding/json (not this receiver's decoder).
type sampleEvent struct {
	name         string
	measurements map[string]float64
	metadata     map[string]any
}

func readSampleBatch(t *testing.T) ([]byte, []sampleEvent) {
	t.Helper()
	body, err := os.ReadFile(filepath.Join("..", "..", "config", "examples", "anvil-events.json"))
	require.NoError(t, err)
	var parsed struct {
		Events []struct {
			Name         any                `json:"name"`
			Measurements map[string]float64 `json:"measurements"`
			Metadata     map[string]any     `json:"metadata"`
		} `json:"events"`
	}
	require.NoError(t, json.Unmarshal(body, &parsed))
	out := make([]sampleEvent, len(parsed.Events))
	for i, e := range parsed.Events {
		name, ok := e.Name.(string)
		if parts, isList := e.Name.([]any); isList {
			ss := make([]string, len(parts))
			for j, p := range parts {
				ss[j], _ = p.(string)
			}
			name, ok = strings.Join(ss, "."), true
		}
		require.True(t, ok, "event %d: name", i)
		out[i] = sampleEvent{name: name, measurements: e.Measurements, metadata: e.Metadata}
	}
	return body, out
}

// TestSampleBatchFeedsTheCatalog posts config/examples/anvil-events.json (the
// README's curl example; others keep it in step with the contract) and
// checks what the receiver makes of it against counts derived from the file
// itself: every event accepted, a span per stop/exception event, exactly the
// catalog series the events' tag values make, with the number of events (or
// the sum of the measurement) each holds, and no missing attribute beyond
// what the file lacks.
func TestSampleBatchFeedsTheCatalog(t *testing.T) {
	body, events := readSampleBatch(t)
	require.NotEmpty(t, events)
	spans := 0
	for _, e := range events {
		if strings.HasSuffix(e.name, ".stop") || strings.HasSuffix(e.name, ".exception") {
			spans++
		}
	}

	// What the catalog should hold, derived from the file.
	type series struct {
		count int
		sum   float64
	}
	want := map[string]*series{}
	wantMissing := map[[2]string]int64{}
	for _, e := range events {
		lacks := map[string]bool{}
		for _, m := range catalog() {
			if m.event() != e.name {
				continue
			}
			v := 1.0
			if m.Type != TypeCounter {
				var ok bool
				if v, ok = e.measurements[m.measurement()]; !ok {
					if v, ok = e.metadata[m.measurement()].(float64); !ok {
						continue // the receiver skips an event without the measurement
					}
				}
			}
			var kv []string
			for _, tag := range m.Tags {
				if tv, ok := e.metadata[tag]; ok {
					kv = append(kv, tag+"="+fmt.Sprint(tv))
				} else {
					lacks[tag] = true
				}
			}
			sort.Strings(kv)
			key := m.Name + "{" + strings.Join(kv, ",") + "}"
			if want[key] == nil {
				want[key] = &series{}
			}
			want[key].count++
			want[key].sum += v
		}
		for tag := range lacks {
			wantMissing[[2]string{e.name, tag}]++
		}
	}

	require.NotEmpty(t, want)

	tr := startTestReceiver(t, nil)
	a := post(t, tr.url, contentTypeJSON, body)
	require.Equal(t, 200, a.code, a.raw)
	require.Equal(t, response{Accepted: len(events), Errors: []eventError{}}, a.resp)
	assert.Equal(t, len(events), tr.logs.LogRecordCount())
	assert.Equal(t, spans, tr.traces.SpanCount(), "a span per stop/exception event")

	md := tr.flush()
	require.Len(t, md, 1)
	got := points(md[0])
	assert.ElementsMatch(t, slices.Collect(maps.Keys(want)), slices.Collect(maps.Keys(got)), "the series")
	types := map[string]MetricType{}
	for _, m := range catalog() {
		types[m.Name] = m.Type
	}
	for key, w := range want {
		p := got[key]
		switch types[key[:strings.IndexByte(key, '{')]] {
		case TypeCounter:
			assert.Equal(t, int64(w.count), p.intValue, key)
		case TypeSum:
			assert.InDelta(t, w.sum, p.value, 1e-9, key)
		case TypeDistribution, TypeSummary:
			assert.Equal(t, uint64(w.count), p.count, key)
		}
	}
	if len(wantMissing) == 0 {
		_, err := tr.tel.GetMetric(missingMetric)
		assert.Error(t, err, "the sample batch lacks no tag: nothing counted as missing")
		return
	}
	var dps []metricdata.DataPoint[int64]
	for k, n := range wantMissing {
		dps = append(dps, missing(k[0], k[1], n))
	}
	metadatatest.AssertEqualReceiverAnvilEventsMissingAttribute(t, tr.tel, dps,
		metricdatatest.IgnoreTimestamp(), metricdatatest.IgnoreExemplars())
}
