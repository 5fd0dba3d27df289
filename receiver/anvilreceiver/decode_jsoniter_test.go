package anvilreceiver

import (
	"strconv"
	"testing"

	jsoniter "github.com/json-iterator/go"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
)

// The issue-14 comparison: the v1 body decoded with json-iterator (already a
// dependency through pdata) instead of jsonscan.go. It reads what
// BenchmarkDecode's batch holds (envelope, names, RFC 3339 times,
// measurements, metadata of any JSON type) into the same batch; it leaves out
// the validation, limits and per-event errors the real decoder adds, so its
// figures flatter it. See the receiver README, "Why a hand-written scanner".

// jsoniterDecoder decodes a v1 JSON body with one reused iterator.
type jsoniterDecoder struct{ it *jsoniter.Iterator }

func newJSONIterDecoder() *jsoniterDecoder {
	return &jsoniterDecoder{it: jsoniter.NewIterator(jsoniter.ConfigFastest)}
}

func (d *jsoniterDecoder) decode(body []byte, out *batch) error {
	it := d.it
	it.ResetBytes(body)
	for field := it.ReadObject(); field != ""; field = it.ReadObject() {
		switch field {
		case "resource":
			out.resource, out.hasResource = pcommon.NewMap(), true
			iterObjectInto(it, out.resource)
		case "events":
			for it.ReadArray() {
				iterEvent(it, out.newEvent())
				out.total++
			}
		default:
			it.Skip()
		}
	}
	return it.Error
}

func iterEvent(it *jsoniter.Iterator, ev *decodedEvent) {
	for field := it.ReadObject(); field != ""; field = it.ReadObject() {
		switch field {
		case "name": // "a.b.c" or ["a", "b", "c"]
			if it.WhatIsNext() != jsoniter.ArrayValue {
				ev.name = it.ReadString()
				continue
			}
			var buf []byte
			for it.ReadArray() {
				if len(buf) > 0 {
					buf = append(buf, '.')
				}
				buf = append(buf, it.ReadStringAsSlice()...)
			}
			ev.name = string(buf)
		case "time":
			if ns, ok := parseUTCTime(it.ReadStringAsSlice()); ok {
				ev.timeUnixNano = ns
			}
		case "time_unix_nano":
			ev.timeUnixNano = it.ReadInt64()
		case "measurements":
			for key := it.ReadObject(); key != ""; key = it.ReadObject() {
				n := it.ReadNumber()
				if iv, err := strconv.ParseInt(string(n), 10, 64); err == nil {
					ev.measurements = append(ev.measurements, measurement{key: key, value: float64(iv), ival: iv, isInt: true})
				} else if f, err := strconv.ParseFloat(string(n), 64); err == nil {
					ev.measurements = append(ev.measurements, measurement{key: key, value: f})
				}
			}
		case "metadata":
			iterObjectInto(it, ev.attrs)
		default:
			it.Skip()
		}
	}
}

func iterObjectInto(it *jsoniter.Iterator, m pcommon.Map) {
	for key := it.ReadObject(); key != ""; key = it.ReadObject() {
		switch it.WhatIsNext() {
		case jsoniter.StringValue:
			m.PutStr(key, it.ReadString())
		case jsoniter.NumberValue:
			n := it.ReadNumber()
			if iv, err := strconv.ParseInt(string(n), 10, 64); err == nil {
				m.PutInt(key, iv)
			} else if f, err := n.Float64(); err == nil {
				m.PutDouble(key, f)
			}
		case jsoniter.BoolValue:
			m.PutBool(key, it.ReadBool())
		case jsoniter.ObjectValue:
			iterObjectInto(it, m.PutEmptyMap(key))
		case jsoniter.ArrayValue:
			iterArrayInto(it, m.PutEmptySlice(key))
		default:
			it.Skip()
		}
	}
}

func iterArrayInto(it *jsoniter.Iterator, s pcommon.Slice) {
	for it.ReadArray() {
		switch it.WhatIsNext() {
		case jsoniter.StringValue:
			s.AppendEmpty().SetStr(it.ReadString())
		case jsoniter.NumberValue:
			f, _ := it.ReadNumber().Float64()
			s.AppendEmpty().SetDouble(f)
		case jsoniter.BoolValue:
			s.AppendEmpty().SetBool(it.ReadBool())
		case jsoniter.ObjectValue:
			iterObjectInto(it, s.AppendEmpty().SetEmptyMap())
		case jsoniter.ArrayValue:
			iterArrayInto(it, s.AppendEmpty().SetEmptySlice())
		default:
			it.Skip()
		}
	}
}

// The comparison is like for like: on the benchmark batch both decoders
// produce the same events.
func TestJSONIterDecoderReadsTheBenchmarkBatchAlike(t *testing.T) {
	body := benchBatch(t)
	var want, got batch
	require.NoError(t, newDecoder(benchBatchSize).decodeJSON(body, &want))
	require.NoError(t, newJSONIterDecoder().decode(body, &got))
	require.Len(t, got.events, len(want.events))
	require.Equal(t, want.resource.AsRaw(), got.resource.AsRaw())
	for i := range want.events {
		w, g := &want.events[i], &got.events[i]
		require.Equal(t, w.name, g.name, i)
		require.Equal(t, w.timeUnixNano, g.timeUnixNano, i)
		require.Len(t, g.measurements, len(w.measurements), i)
		for _, m := range w.measurements {
			v, ok := g.value(m.key)
			require.True(t, ok)
			require.Equal(t, m.value, v)
		}
		// The real decoder adds exception attributes from the measurements of
		// exception events; compare the metadata it read.
		for k, v := range g.attrs.All() {
			if tk := traceKeyIndex(k); tk >= 0 && v.Type() == pcommon.ValueTypeStr {
				// kept aside until traceContext decides what is lifted
				require.Equal(t, v.Str(), string(w.traceVals[tk]), "event %d: %s", i, k)
				continue
			}
			wv, ok := w.attrs.Get(k)
			require.True(t, ok, "event %d: %s", i, k)
			require.Equal(t, wv.AsRaw(), v.AsRaw(), "event %d: %s", i, k)
		}
	}
}

// BenchmarkDecodeJSONIter is BenchmarkDecode with the json-iterator decoder.
func BenchmarkDecodeJSONIter(b *testing.B) {
	body := benchBatch(b)
	d := newJSONIterDecoder()
	var bt batch
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		bt.reset()
		if err := d.decode(body, &bt); err != nil {
			b.Fatal(err)
		}
	}
	reportEvents(b)
}
