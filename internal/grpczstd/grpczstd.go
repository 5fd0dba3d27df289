// Package grpczstd sets the encoder level of the gRPC "zstd" compressor that
// the collector's configgrpc registers (compression: zstd). configgrpc has no
// level setting for gRPC at v0.155.0 and encodes at zstd's default level; a
// distribution calls UseEncoderLevel once, from an init function of its main
// package (after every imported package, configgrpc included, registered its
// compressors), to trade ratio for CPU. Decompression is left to the
// compressor it replaces: zstd frames decode the same whatever level wrote
// them, so peers need nothing.
package grpczstd

import (
	"fmt"
	"io"
	"sync"

	"github.com/klauspost/compress/zstd"
	"google.golang.org/grpc/encoding"
)

// Name is the gRPC content-coding this package replaces.
const Name = "zstd"

// windowSize bounds an encoder's window like configgrpc's compressor does:
// an OTLP request is rarely larger, and the default window costs memory per
// pooled encoder for nothing.
const windowSize = 512 << 10

// UseEncoderLevel replaces the registered "zstd" compressor with one that
// encodes at level and decodes with the compressor it replaces. It panics if
// no "zstd" compressor is registered: the caller runs before configgrpc's
// init, which would then keep its own (a build mistake, not a runtime state).
func UseEncoderLevel(level zstd.EncoderLevel) {
	prev := encoding.GetCompressor(Name)
	if prev == nil {
		panic("grpczstd: no zstd gRPC compressor registered yet; call UseEncoderLevel from the main package's init")
	}
	if c, ok := prev.(*compressor); ok {
		prev = c.decoding
	}
	encoding.RegisterCompressor(newCompressor(level, prev))
}

func newCompressor(level zstd.EncoderLevel, decoding encoding.Compressor) *compressor {
	return &compressor{level: level, decoding: decoding}
}

// compressor encodes with pooled encoders at level; Decompress is decoding's.
type compressor struct {
	level    zstd.EncoderLevel
	decoding encoding.Compressor
	encoders sync.Pool // *zstd.Encoder
}

func (c *compressor) Name() string { return Name }

func (c *compressor) Compress(w io.Writer) (io.WriteCloser, error) {
	enc, ok := c.encoders.Get().(*zstd.Encoder)
	if !ok {
		var err error
		// Concurrency 1: gRPC compresses one message per call, already on
		// the exporter's own consumer goroutines.
		enc, err = zstd.NewWriter(w, zstd.WithEncoderLevel(c.level), zstd.WithWindowSize(windowSize), zstd.WithEncoderConcurrency(1))
		if err != nil {
			return nil, fmt.Errorf("grpczstd: new encoder: %w", err)
		}
	} else {
		enc.Reset(w)
	}
	return &pooledEncoder{Encoder: enc, pool: &c.encoders}, nil
}

func (c *compressor) Decompress(r io.Reader) (io.Reader, error) {
	return c.decoding.Decompress(r)
}

// pooledEncoder goes back to the pool on Close (gRPC closes every writer it
// gets; one that is never closed is simply collected). Only the first Close
// touches the encoder: by a second one it may already serve another writer.
type pooledEncoder struct {
	*zstd.Encoder
	pool *sync.Pool
}

func (e *pooledEncoder) Close() error {
	if e.pool == nil {
		return nil
	}
	err := e.Encoder.Close()
	e.Encoder.Reset(nil)
	e.pool.Put(e.Encoder)
	e.pool = nil
	return err
}
