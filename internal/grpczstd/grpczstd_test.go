package grpczstd

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/klauspost/compress/zstd"
	_ "go.opentelemetry.io/collector/config/configgrpc" // registers the stock "zstd" compressor this package replaces
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"google.golang.org/grpc/encoding"
)

// payload is an OTLP logs request like the agent's batches: 2000 event
// records with repetitive keys, varying values and random trace ids.
func payload() []byte {
	rng := rand.New(rand.NewPCG(1, 2))
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("service.name", "anvil")
	rl.Resource().Attributes().PutStr("service.instance.id", "anvil@node-1")
	lrs := rl.ScopeLogs().AppendEmpty().LogRecords()
	for i := range 2000 {
		lr := lrs.AppendEmpty()
		lr.SetEventName("anvil.label.submit.stop")
		lr.SetTimestamp(pcommon.Timestamp(1_700_000_000_000_000_000 + uint64(i)*97_000))
		var tid pcommon.TraceID
		var sid pcommon.SpanID
		for j := range tid {
			tid[j] = byte(rng.Uint32())
		}
		for j := range sid {
			sid[j] = byte(rng.Uint32())
		}
		lr.SetTraceID(tid)
		lr.SetSpanID(sid)
		a := lr.Attributes()
		a.PutStr("queue_id", fmt.Sprintf("q-%d", rng.IntN(20)))
		a.PutStr("labeler_id", fmt.Sprintf("u-%d", rng.IntN(1000)))
		a.PutStr("assignment_id", fmt.Sprintf("a-%d", rng.Uint64()))
		a.PutInt("duration", rng.Int64N(10_000_000))
	}
	b, err := (&plog.ProtoMarshaler{}).MarshalLogs(ld)
	if err != nil {
		panic(err)
	}
	return b
}

func compress(t *testing.T, c encoding.Compressor, p []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	w, err := c.Compress(&out)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(p); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func decompress(t *testing.T, c encoding.Compressor, p []byte) []byte {
	t.Helper()
	r, err := c.Decompress(bytes.NewReader(p))
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestUseEncoderLevelReplacesTheCompressorAndKeepsItsDecoder(t *testing.T) {
	stock := encoding.GetCompressor(Name)
	if stock == nil {
		t.Fatal("configgrpc registered no zstd compressor")
	}
	t.Cleanup(func() { encoding.RegisterCompressor(stock) })

	UseEncoderLevel(zstd.SpeedFastest)
	got, ok := encoding.GetCompressor(Name).(*compressor)
	if !ok {
		t.Fatalf("registered compressor is %T, not this package's", encoding.GetCompressor(Name))
	}
	if got.level != zstd.SpeedFastest || got.decoding != stock {
		t.Fatalf("level %v, decoding %T: want SpeedFastest over the stock decoder", got.level, got.decoding)
	}
	// Called twice (a second init), it still decodes with the stock
	// compressor, not with itself.
	UseEncoderLevel(zstd.SpeedDefault)
	if again := encoding.GetCompressor(Name).(*compressor); again.decoding != stock || again.level != zstd.SpeedDefault {
		t.Fatalf("second call: level %v, decoding %T", again.level, again.decoding)
	}
}

func TestFastestLevelRoundTripsThroughTheStockDecoder(t *testing.T) {
	stock := encoding.GetCompressor(Name)
	p := payload()
	fast, def := newCompressor(zstd.SpeedFastest, stock), newCompressor(zstd.SpeedDefault, stock)

	// Twice each: the second run takes a pooled encoder.
	for range 2 {
		cf, cd := compress(t, fast, p), compress(t, def, p)
		if bytes.Equal(cf, cd) {
			t.Fatal("fastest and default levels wrote the same frame: the level is not applied")
		}
		for name, frame := range map[string][]byte{"fastest": cf, "default": cd} {
			// The stock compressor decodes what this one wrote, and the
			// other way round: peers need nothing.
			if back := decompress(t, stock, frame); !bytes.Equal(back, p) {
				t.Fatalf("%s: stock decoder returned %d bytes, want %d", name, len(back), len(p))
			}
			if back := decompress(t, fast, frame); !bytes.Equal(back, p) {
				t.Fatalf("%s: this decoder returned %d bytes, want %d", name, len(back), len(p))
			}
		}
	}
	if back := decompress(t, fast, compress(t, stock, p)); !bytes.Equal(back, p) {
		t.Fatal("a frame from the stock encoder did not decode")
	}
}

func TestASecondCloseLeavesThePooledEncoderAlone(t *testing.T) {
	stock := encoding.GetCompressor(Name)
	c := newCompressor(zstd.SpeedFastest, stock)
	var first, out bytes.Buffer
	w, err := c.Compress(&first)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	// The next writer takes the pooled encoder; a stale second Close of the
	// first writer must neither end its frame nor pool its encoder again.
	p := payload()
	w1, _ := c.Compress(&out)
	if _, err := w1.Write(p[:len(p)/2]); err != nil {
		t.Fatal(err)
	}
	_ = w.Close()
	w2, _ := c.Compress(&bytes.Buffer{})
	if w1.(*pooledEncoder).Encoder == w2.(*pooledEncoder).Encoder {
		t.Fatal("two writers share one encoder after a double Close")
	}
	if _, err := w1.Write(p[len(p)/2:]); err != nil {
		t.Fatal(err)
	}
	if err := w1.Close(); err != nil {
		t.Fatal(err)
	}
	if back := decompress(t, stock, out.Bytes()); !bytes.Equal(back, p) {
		t.Fatalf("the writer whose encoder a stale Close touched wrote %d bytes, want %d", len(back), len(p))
	}
}

func BenchmarkCompress(b *testing.B) {
	stock := encoding.GetCompressor(Name)
	p := payload()
	for _, c := range []struct {
		name string
		c    encoding.Compressor
	}{
		{"fastest", newCompressor(zstd.SpeedFastest, stock)},
		{"default", newCompressor(zstd.SpeedDefault, stock)},
		{"stock", stock},
	} {
		b.Run(c.name, func(b *testing.B) {
			var out bytes.Buffer
			b.SetBytes(int64(len(p)))
			for b.Loop() {
				out.Reset()
				w, _ := c.c.Compress(&out)
				_, _ = w.Write(p)
				_ = w.Close()
			}
			b.ReportMetric(float64(len(p))/float64(out.Len()), "ratio")
		})
	}
}
