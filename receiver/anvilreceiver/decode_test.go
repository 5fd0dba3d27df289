package anvilreceiver

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/anvil/anvilcol/internal/event"
	"github.com/anvil/anvilcol/internal/timeunit"
)

// newTestAggregatorFuzz aggregates the whole catalog, as the receiver does by default.
func newTestAggregatorFuzz(t *testing.T) *aggregator {
	cfg := createDefaultConfig().(*Config)
	return newAggregator(newMetricDefs(cfg.effectiveMetrics()), timeunit.Nanosecond, false, time.Hour, 100, time.Unix(0, 0))
}

func decodeString(t *testing.T, contentType, body string) (*batch, error) {
	t.Helper()
	d := newDecoder(1000)
	b := &batch{}
	var err error
	if contentType == contentTypeNDJSON {
		err = d.decodeNDJSON([]byte(body), b)
	} else {
		err = d.decodeJSON([]byte(body), b)
	}
	return b, err
}

func TestDecodeNameForms(t *testing.T) {
	b, err := decodeString(t, contentTypeJSON, `[{"name": ["anvil","label","submit","stop"]}, {"name": "anvil.label.submit.stop"},
		{"name": ["single"]}, {"name": "a\u002eb"}]`)
	require.NoError(t, err)
	require.Len(t, b.events, 4)
	assert.Equal(t, "anvil.label.submit.stop", b.events[0].name)
	assert.Equal(t, "anvil.label.submit.stop", b.events[1].name)
	assert.Equal(t, "single", b.events[2].name)
	assert.Equal(t, "a.b", b.events[3].name)
}

func TestDecodeTimeForms(t *testing.T) {
	b, err := decodeString(t, contentTypeJSON, `[
		{"name": "e", "time": "2026-05-01T12:00:00.123456789Z"},
		{"name": "e", "time": "2026-05-01T14:00:00+02:00"},
		{"name": "e", "time_unix_nano": 1777636800123456789},
		{"name": "e", "time_unix_nano": "1777636800000000001"},
		{"name": "e"},
		{"name": "e", "time_unix_nano": -5},
		{"name": "e", "time": 17}]`)
	require.NoError(t, err)
	require.Len(t, b.events, 5)
	assert.Equal(t, int64(1777636800123456789), b.events[0].timeUnixNano)
	assert.Equal(t, int64(1777636800000000000), b.events[1].timeUnixNano)
	assert.Equal(t, int64(1777636800123456789), b.events[2].timeUnixNano)
	assert.Equal(t, int64(1777636800000000001), b.events[3].timeUnixNano)
	assert.Zero(t, b.events[4].timeUnixNano, "absent: the receive time is used")
	require.Len(t, b.errors, 2)
	assert.Equal(t, 5, b.errors[0].Index)
	assert.Equal(t, "time", b.errors[0].reason)
	assert.Equal(t, "time must be an RFC 3339 string", b.errors[1].Error)
}

func TestDecodeTimeUnit(t *testing.T) {
	b, err := decodeString(t, contentTypeJSON, `[{"name": "e", "time_unit": "millisecond"}, {"name": "e", "time_unit": "native"}, {"name": "e", "time_unit": "us"}]`)
	require.NoError(t, err)
	assert.Equal(t, timeunit.Millisecond, b.events[0].unit)
	assert.Equal(t, timeunit.Native, b.events[1].unit)
	assert.Equal(t, timeunit.Microsecond, b.events[2].unit)
}

func TestDecodeStringsAndEscapes(t *testing.T) {
	b, err := decodeString(t, contentTypeJSON, `[{"name": "e", "metadata": {"s": "tab\tquote\" snow\u2603 pair\ud83d\ude00 lone\ud800", "big": 12345678901234567890}}]`)
	require.NoError(t, err)
	require.Len(t, b.events, 1)
	v, _ := b.events[0].attrs.Get("s")
	assert.Equal(t, "tab\tquote\" snow☃ pair😀 lone\uFFFD", v.Str())
	big, _ := b.events[0].attrs.Get("big")
	assert.InDelta(t, 1.2345678901234567e19, big.Double(), 1e4, "integers beyond int64 become doubles")
}

func TestDecodeInvalidUTF8IsReplaced(t *testing.T) {
	b, err := decodeString(t, contentTypeJSON, "[{\"name\": \"e\", \"metadata\": {\"s\": \"ok\xffok\"}}]")
	require.NoError(t, err)
	v, _ := b.events[0].attrs.Get("s")
	assert.Equal(t, "ok\uFFFDok", v.Str())
}

func TestDecodeIgnoresUnknownMembers(t *testing.T) {
	b, err := decodeString(t, contentTypeJSON, `{"version": 1, "events": [{"name": "e", "extra": {"a": [1, 2, {"b": null}]}}], "more": true}`)
	require.NoError(t, err)
	assert.Len(t, b.events, 1)
	assert.Empty(t, b.errors)
}

func TestDecodeRejectsHugeNesting(t *testing.T) {
	_, err := decodeString(t, contentTypeJSON, `[{"name": "e", "x": `+strings.Repeat("[", 100000)+`]}]`)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "nested deeper than 64 levels")
}

func FuzzDecode(f *testing.F) {
	sample, err := os.ReadFile(filepath.Join("..", "..", "config", "examples", "anvil-events.json"))
	require.NoError(f, err)
	for _, seed := range []string{
		string(sample),
		`[]`, `{}`, `{"events": []}`, `[{"name": "a.b"}]`,
		`[{"name": ["a", "b"], "time": "2026-05-01T12:00:00Z", "measurements": {"duration": 1.5e3}, "metadata": {"k": [1, {"x": null}]}}]`,
		`[{"name": "a", "time_unix_nano": "12", "time_unit": "ms", "metadata": {"s": "\u00e9\ud83d\ude00"}}]`,
		`{"resource": {"service.name": "x", "n": {"m": 1}}, "events": [{"name": "a.stop", "measurements": {"duration": -1}}]}`,
		"{\"name\": \"a\"}\n{\"name\": \n[1]\n",
		`[{"name": "a", "metadata": {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}}]`,
		`[1, "x", null, true, {"name": 1e400}]`, `[{"name":"a","measurements":{"x":-0.0e-0}}]`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, ndjson := range []bool{false, true} {
			d := newDecoder(50)
			b := &batch{}
			var err error
			if ndjson {
				err = d.decodeNDJSON(body, b)
			} else {
				err = d.decodeJSON(body, b)
			}
			if err != nil {
				var re *requestError
				require.ErrorAs(t, err, &re)
				require.Contains(t, []int{400, 413}, re.status)
				continue
			}
			require.Equal(t, b.total, len(b.events)+len(b.errors))
			last := -1
			for _, e := range b.errors {
				require.Greater(t, e.Index, last)
				require.Less(t, e.Index, b.total)
				require.NotEmpty(t, e.Error)
				require.NotEmpty(t, e.reason)
				last = e.Index
			}
			for i := range b.events {
				ev := &b.events[i]
				require.NotEmpty(t, ev.name)
				require.True(t, utf8.ValidString(ev.name))
			}
			// Conversion must not panic either.
			tc := make([]ids, len(b.events))
			for i := range b.events {
				_, lc := event.Split(b.events[i].name)
				tc[i] = traceContext(&b.events[i], lc)
			}
			a := newTestAggregatorFuzz(t)
			var st stage
			for i := range b.events {
				a.stageEvent(&st, &b.events[i])
			}
			a.apply(&st, 0, pcommon.NewMap, time.Unix(1, 0))
			buildTraces(b, tc, pcommon.NewMap(), func(pcommon.InstrumentationScope) {}, timeunit.Nanosecond, 1)
			if len(b.events) > 0 {
				buildLogs(b, tc, pcommon.NewMap(), func(pcommon.InstrumentationScope) {}, 1)
			}
			a.flush(time.Unix(2, 0), noScope)
		}
	})
}

func TestFastTimeParseAgreesWithTimeParse(t *testing.T) {
	for _, s := range []string{"2026-05-01T12:00:00Z", "2026-05-01T12:00:00.1Z", "2026-05-01T12:00:00.123456789Z",
		"2024-02-29T23:59:59.999Z", "1970-01-01T00:00:00Z", "2000-03-01T00:00:00Z", "2100-12-31T23:59:59Z", "2261-01-01T00:00:00Z"} {
		want, err := time.Parse(time.RFC3339Nano, s)
		require.NoError(t, err)
		got, ok := parseUTCTime([]byte(s))
		require.True(t, ok, s)
		assert.Equal(t, want.UnixNano(), got, s)
	}
	for _, s := range []string{"2026-02-30T12:00:00Z", "2100-02-29T00:00:00Z", "1969-12-31T23:59:59Z", "2026-05-01T12:00:00.Z", "2026-05-01T25:00:00Z", "2026-05-01T12:00:00+02:00", "2026-05-01T12:00:00.1234567891Z"} {
		_, ok := parseUTCTime([]byte(s))
		assert.False(t, ok, s)
	}
}
