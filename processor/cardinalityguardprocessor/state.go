package cardinalityguardprocessor // import "github.com/anvil/anvilcol/processor/cardinalityguardprocessor"

import (
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/anvil/anvilcol/internal/metricstate"
)

// streamKey identifies a metric stream: one metric (name, type, temporality,
// monotonicity) of one resource and scope. Caps apply per stream, as the SDK's
// cardinality limit applies per instrument of one writer.
type streamKey struct {
	resource, scope uint64
	name            string
	kind            uint8
}

func metricKind(m pmetric.Metric) (kind uint8, cumulative, monotonic bool) {
	kind = uint8(m.Type()) << 3
	switch m.Type() {
	case pmetric.MetricTypeSum:
		s := m.Sum()
		cumulative, monotonic = s.AggregationTemporality() == pmetric.AggregationTemporalityCumulative, s.IsMonotonic()
		if monotonic {
			kind |= 4
		}
	case pmetric.MetricTypeHistogram:
		cumulative, monotonic = m.Histogram().AggregationTemporality() == pmetric.AggregationTemporalityCumulative, true
	case pmetric.MetricTypeExponentialHistogram:
		cumulative, monotonic = m.ExponentialHistogram().AggregationTemporality() == pmetric.AggregationTemporalityCumulative, true
	case pmetric.MetricTypeSummary:
		cumulative, monotonic = true, true // OTLP summaries are cumulative
	}
	if cumulative {
		kind |= 1
	}
	return kind, cumulative, monotonic
}

// stream is the state of one metric stream.
type stream struct {
	name       string
	typ        pmetric.MetricType
	rules      *rules
	cumulative bool
	monotonic  bool
	evictedAt  uint32 // cutoff of the last eviction

	series   map[uint64]*outSeries // output series by surviving-attribute hash
	overflow *outSeries            // otel.metric.overflow=true; not counted in the cap

	// The attribute keys seen, by position (keylayout.go), and the output
	// series the previous point was routed to (points of one series often
	// come in runs): both spare per-point work, neither changes a result.
	layout  []keyInfo
	lastRed uint64
	last    *outSeries

	// Per input series state, cumulative streams only (delta points and gauges
	// need none). Numbers use a 16-byte value so a million inputs stay small.
	inputs     *numTable
	histInputs map[uint64]*histInput
}

// numInput is the last cumulative value of one input series of a number stream.
type numInput struct {
	last  float64
	start uint32 // metricstate.HashStart of the start time
	seen  uint32 // tick; the top bit marks an input pinned to the overflow series
}

const overflowBit = 1 << 31

func (in numInput) overflow() bool { return in.seen&overflowBit != 0 }

// histInput is the last cumulative value of one input series of a histogram,
// exponential histogram or summary stream.
type histInput struct {
	last     metricstate.Histogram
	start    uint32
	seen     uint32
	overflow bool
}

// outSeries is one output series: its state across batches and its point in
// the batch being processed.
type outSeries struct {
	seen      uint32
	start     pcommon.Timestamp // cumulative: fixed at creation
	collapsed bool              // ever received a point that lost attributes (summary quantiles)
	isDouble  bool              // a double point folded in: emit double

	total float64                // cumulative number value: sum of the inputs' latest values
	agg   *metricstate.Histogram // histogram value: cumulative total, or the batch's delta

	// The batch being processed: gen says whether the handles below belong to it.
	gen      uint64
	merged   bool // more than one point folded in this batch
	batchSum float64
	minStart pcommon.Timestamp
	maxTime  pcommon.Timestamp
	num      pmetric.NumberDataPoint
	hist     pmetric.HistogramDataPoint
	exp      pmetric.ExponentialHistogramDataPoint
	summary  pmetric.SummaryDataPoint
}

func (s *stream) activeSeries() int {
	n := len(s.series)
	if s.overflow != nil {
		n++
	}
	return n
}

// evict frees output series and input state unseen since before tick
// `cutoff`; it returns the number of output series freed.
func (s *stream) evict(cutoff uint32) int {
	n := s.evictSeries(cutoff)
	if s.inputs != nil {
		s.inputs.evict(cutoff)
	}
	for k, in := range s.histInputs {
		if in.seen < cutoff {
			delete(s.histInputs, k)
		}
	}
	return n
}

// evictSeries frees the output series unseen since before cutoff (cheap: at
// most cap+1 entries). Input state of theirs left behind is expired lazily.
func (s *stream) evictSeries(cutoff uint32) int {
	s.evictedAt = cutoff
	s.last = nil
	n := 0
	for k, o := range s.series {
		if o.seen < cutoff {
			delete(s.series, k)
			n++
		}
	}
	if s.overflow != nil && s.overflow.seen < cutoff {
		s.overflow = nil
		n++
	}
	return n
}

func (s *stream) empty() bool {
	return len(s.series) == 0 && s.overflow == nil && (s.inputs == nil || s.inputs.Len() == 0) && len(s.histInputs) == 0
}
