package metricstate // import "github.com/anvil/anvilcol/internal/metricstate"

import (
	"github.com/lightstep/go-expohisto/structure"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

// Recorder records values into an exponential histogram that starts at
// MaxScale and lowers its scale, as the OpenTelemetry SDKs do, to keep at
// most maxSize buckets per range. It is lightstep/go-expohisto, the SDKs'
// own structure: it measured faster than a hand-written one
// (BenchmarkRecordExponential).
type Recorder struct {
	h structure.Float64
}

// NewRecorder returns an empty recorder of at most maxSize buckets a range.
func NewRecorder(maxSize int) *Recorder {
	r := &Recorder{}
	r.h.Init(structure.NewConfig(structure.WithMaxSize(int32(maxSize))))
	return r
}

// Record adds one value; 0 goes to the zero bucket.
func (r *Recorder) Record(v float64) { r.h.Update(v) }

// Reset empties the recorder for a new interval (back to MaxScale).
func (r *Recorder) Reset() { r.h.Clear() }

// Into sets h to the recorded histogram.
func (r *Recorder) Into(h *Histogram) {
	n := r.h.Count()
	h.Count, h.Sum, h.HasSum = n, r.h.Sum(), n > 0
	h.Min, h.Max, h.HasMin, h.HasMax = r.h.Min(), r.h.Max(), n > 0, n > 0
	h.Scale, h.ZeroCount, h.ZeroThreshold = r.h.Scale(), r.h.ZeroCount(), 0
	readBuckets(&h.Pos, r.h.Positive())
	readBuckets(&h.Neg, r.h.Negative())
}

func readBuckets(b *Buckets, from *structure.Buckets) {
	b.Offset, b.Counts = from.Offset(), b.Counts[:0]
	for i := uint32(0); i < from.Len(); i++ {
		b.Counts = append(b.Counts, from.At(i))
	}
}

// WriteTo sets an exponential histogram point's value (count, sum, min, max,
// buckets) to the recorded histogram; scratch is reused.
func (r *Recorder) WriteTo(dp pmetric.ExponentialHistogramDataPoint, scratch *Histogram) {
	r.Into(scratch)
	scratch.WriteExponential(dp)
}
