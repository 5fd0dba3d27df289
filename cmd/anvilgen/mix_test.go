package main

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/anvil/anvilcol/contract"
)

// catalogEvents is the event catalog of contract/events.json.
var catalogEvents = func() map[string]bool {
	m := map[string]bool{}
	for _, n := range contract.MustLoad().Names() {
		m[n] = true
	}
	return m
}()

// The generated events are what AnvilCol.Forwarder sends for ADR-shaped
// spans: every event carries the keys the contract requires, a stop or
// exception event its span's start keys too.
func TestMixFollowsTheContract(t *testing.T) {
	c := contract.MustLoad()
	g := newGenerator(1, mustWeights(t, DefaultWeights))
	events := g.next(nil, 20000, time.Unix(1777636800, 0))
	problems := map[string]int{}
	for i := range events {
		e := &events[i]
		ms, md := map[string]any{}, map[string]any{}
		for _, m := range e.Measurements {
			if f, ok := m.val.number(); ok {
				ms[m.key] = f
			} else {
				ms[m.key] = m.val.s
			}
		}
		for _, m := range e.Metadata {
			md[m.key] = m.val
		}
		for _, p := range c.Check(e.Name, ms, md) {
			problems[p]++
		}
	}
	for p, n := range problems {
		t.Errorf("%d events: %s", n, p)
	}
}

func mustWeights(t *testing.T, s string) []float64 {
	t.Helper()
	w, err := parseWeights(s)
	require.NoError(t, err)
	return w
}

func TestMixEmitsOnlyCatalogEventsWithTraceContextAndHighCardinalityIDs(t *testing.T) {
	g := newGenerator(1, mustWeights(t, DefaultWeights))
	events := g.next(nil, 20000, time.Unix(1777636800, 0))
	require.Len(t, events, 20000)
	names := map[string]int{}
	labelers := map[string]bool{}
	tp := regexp.MustCompile(`^00-[0-9a-f]{32}-[0-9a-f]{16}-01$`)
	for i := range events {
		e := &events[i]
		require.True(t, catalogEvents[e.Name], "%s is not a catalog event", e.Name)
		names[e.Name]++
		if strings.HasPrefix(e.Name, "anvil.label.submit.") {
			v, ok := e.meta("traceparent")
			require.True(t, ok, "label submits carry W3C trace context")
			require.Regexp(t, tp, v)
			l, _ := e.meta("labeler_id")
			labelers[l] = true
			_, ok = e.meta("assignment_id")
			require.True(t, ok, "label submits carry the sampling key")
		}
		if strings.HasSuffix(e.Name, ".stop") {
			d, ok := e.measurementValue("duration")
			require.True(t, ok)
			assert.Positive(t, d.i)
		}
	}
	// Every operation of the default mix shows up, label submits most.
	for _, n := range []string{"anvil.label.submit.stop", "anvil.assignment.dispatch.stop", "anvil.agreement.compute.stop",
		"anvil.agreement.low_score", "anvil.export.progress", "anvil.auth.access_granted",
		"anvil.policy.select_assignment.stop", "anvil.assignment.timed_out", "anvil.queue.created"} {
		assert.Positive(t, names[n], n)
	}
	assert.Greater(t, names["anvil.label.submit.start"], names["anvil.assignment.dispatch.start"])
	// The last operation may be cut after its start event.
	assert.InDelta(t, names["anvil.label.submit.start"], names["anvil.label.submit.stop"]+names["anvil.label.submit.exception"], 1)
	assert.Greater(t, len(labelers), 1000, "labeler_id is high-cardinality")
}

func TestWeightsSelectOperations(t *testing.T) {
	g := newGenerator(7, mustWeights(t, "auth=1"))
	for _, e := range g.next(nil, 500, time.Now()) {
		assert.True(t, strings.HasPrefix(e.Name, "anvil.auth."), e.Name)
	}
	g = newGenerator(7, mustWeights(t, "label=0,export=1"))
	for _, e := range g.next(nil, 500, time.Now()) {
		assert.True(t, strings.HasPrefix(e.Name, "anvil.export."), e.Name)
	}
}

func TestSameSeedSameEvents(t *testing.T) {
	now := time.Unix(1777636800, 0)
	a := newGenerator(42, mustWeights(t, DefaultWeights)).next(nil, 1000, now)
	b := newGenerator(42, mustWeights(t, DefaultWeights)).next(nil, 1000, now)
	c := newGenerator(43, mustWeights(t, DefaultWeights)).next(nil, 1000, now)
	assert.Equal(t, encodeAnvil(nil, "n", a, false), encodeAnvil(nil, "n", b, false))
	assert.NotEqual(t, encodeAnvil(nil, "n", a, false), encodeAnvil(nil, "n", c, false))
}

func TestParseWeightsNamesTheProblem(t *testing.T) {
	for in, want := range map[string]string{
		"label":        `"label" is not name=weight`,
		"labels=1":     `unknown scenario "labels"`,
		"label=-1":     "label=-1 must be a number >= 0",
		"label=0":      "at least one scenario",
		"label=x,qq=1": "label=x must be a number",
	} {
		_, err := parseWeights(in)
		require.Error(t, err, in)
		assert.Contains(t, err.Error(), want, in)
	}
}

func TestBodiesAreValidJSON(t *testing.T) {
	events := newGenerator(3, mustWeights(t, DefaultWeights)).next(nil, 300, time.Now())
	events = append(events, Event{Name: "anvil.queue.created", Metadata: []kv{{"odd", str("q\"\\\n\x01\xff")}}})
	var body struct {
		Resource map[string]string `json:"resource"`
		Events   []struct {
			Name         string         `json:"name"`
			TimeUnixNano int64          `json:"time_unix_nano"`
			Measurements map[string]any `json:"measurements"`
			Metadata     map[string]any `json:"metadata"`
		} `json:"events"`
	}
	require.NoError(t, json.Unmarshal(encodeAnvil(nil, "anvil@node-1", events, false), &body))
	assert.Equal(t, "anvil@node-1", body.Resource["service.instance.id"])
	require.Len(t, body.Events, len(events))
	assert.Equal(t, "q\"\\\n\x01\uFFFD", body.Events[len(events)-1].Metadata["odd"])
	for i, line := range strings.Split(strings.TrimSuffix(string(encodeAnvil(nil, "", events, true)), "\n"), "\n") {
		var e map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &e), "line %d", i)
		assert.Equal(t, events[i].Name, e["name"])
	}
}
