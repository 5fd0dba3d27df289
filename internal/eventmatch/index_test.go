package eventmatch

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/anvil/anvilcol/internal/event"
)

func testIndex(t *testing.T, patterns ...string) (*Index, func(*Selection) []string) {
	var ms []*Matcher
	for _, p := range patterns {
		m, err := New([]string{p})
		require.NoError(t, err)
		ms = append(ms, m)
	}
	return NewIndex(ms), func(s *Selection) []string {
		var out []string
		for _, i := range s.Rules {
			out = append(out, patterns[i])
		}
		return out
	}
}

func TestIndexSelectsSpansByNameAndByTheirEvent(t *testing.T) {
	ix, names := testIndex(t, "*.exception", "anvil.export.generate", "anvil.export.*.stop", "*")
	tests := []struct {
		key   event.Key
		event string
		want  []string
	}{
		{event.Key{Name: "anvil.export.generate.exception"}, "anvil.export.generate.exception", []string{"*.exception", "*"}},
		{event.Key{Name: "anvil.export.generate", End: event.SpanException}, "anvil.export.generate.exception", []string{"*.exception", "anvil.export.generate", "*"}},
		{event.Key{Name: "anvil.export.generate", End: event.SpanStop}, "anvil.export.generate.stop", []string{"anvil.export.generate", "anvil.export.*.stop", "*"}},
		{event.Key{Name: "anvil.export.generate.stop"}, "anvil.export.generate.stop", []string{"anvil.export.*.stop", "*"}},
		{event.Key{Name: ""}, "", []string{"*"}},
	}
	for _, tt := range tests {
		for range 2 { // miss, then hit
			s := ix.Select(tt.key)
			_, lc := event.Split(tt.event)
			assert.Equal(t, lc, s.Lifecycle)
			assert.Equal(t, tt.event, s.Event, "%+v", tt.key)
			assert.Equal(t, tt.want, names(&s), "%+v", tt.key)
		}
	}
}

func TestIndexBeyondItsBoundSelectsUncached(t *testing.T) {
	ix, _ := testIndex(t, "a.*")
	for i := range MaxCachedKeys + 10 {
		k := event.Key{Name: fmt.Sprintf("a.%d", i)}
		assert.Len(t, ix.Select(k).Rules, 1)
	}
	assert.Equal(t, MaxCachedKeys, cachedKeys(ix.cache.Load()))
}

func TestMemoRemembersTheLastKey(t *testing.T) {
	ix, _ := testIndex(t, "a.*")
	m := ix.Memo()
	assert.Empty(t, m.Select(event.Key{Name: ""}).Rules, "the empty name is looked up, not taken for the unprimed memo")
	assert.Len(t, m.Select(event.Key{Name: "a.b"}).Rules, 1)
	assert.Len(t, m.Select(event.Key{Name: "a", End: event.SpanStop}).Rules, 1, "a span a is the event a.stop")
	if testing.CoverMode() == "" {
		assert.Zero(t, testing.AllocsPerRun(100, func() { m.Select(event.Key{Name: "a.b"}) }))
	}
}
