package foundationexporter // import "github.com/anvil/anvilcol/exporter/foundationexporter"

import (
	"math"
	"strconv"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/anvil/anvilcol/internal/jsonenc"
	"github.com/anvil/anvilcol/internal/metricstate"
)

// Record types of the Foundation format.
const (
	typeCounter      = "counter"
	typeGauge        = "gauge"
	typeDistribution = "distribution"
	typeSummary      = "summary"
)

// encoder turns metrics into Foundation records, one per data point. It writes
// JSON by hand into one buffer: the batch is walked once and no intermediate
// structs or maps are built (see BenchmarkEncode1000Points).
type encoder struct {
	prefix       string
	resourceTags []string
	now          func() time.Time
}

// batch holds the encoded records of one pmetric.Metrics. buf is laid out as
// the body of one request carrying every record, `{"metrics":[r0,r1,...`, so
// the common case (all records fit in max_batch_points) sends buf itself.
type batch struct {
	buf []byte
	// starts[i], ends[i] delimit record i in buf.
	starts, ends []int
	// ords[i] is the ordinal, in walk order, of the data point record i came
	// from, so a retry can resend exactly the points not yet delivered.
	ords []int
	// invalid counts data points that cannot be represented (a NaN or
	// infinite value, a no-recorded-value flag, inconsistent buckets).
	invalid int
	// firstInvalid names the metric of the first invalid point, for the log.
	firstInvalid string
}

const bodyHead = `{"metrics":[`

// newBatch returns an empty batch with room for points records of
// bytesPerPoint bytes each.
func newBatch(points, bytesPerPoint int) *batch {
	b := &batch{
		buf:    make([]byte, 0, max(points*bytesPerPoint, 512)),
		starts: make([]int, 0, points),
		ends:   make([]int, 0, points),
		ords:   make([]int, 0, points),
	}
	b.buf = append(b.buf, bodyHead...)
	return b
}

func (b *batch) len() int { return len(b.ends) }

// body returns {"metrics":[records lo..hi-1]}. For the whole batch it is buf
// itself (the batch must not be reused while the request may still read
// it); for a part, a copy.
func (b *batch) body(lo, hi int) []byte {
	if lo == 0 && hi == len(b.ends) && len(b.buf) == b.ends[hi-1] {
		b.buf = append(b.buf, "]}"...)
		return b.buf
	}
	size := len(bodyHead) + 2
	for i := lo; i < hi; i++ {
		size += b.ends[i] - b.starts[i] + 1
	}
	out := make([]byte, 0, size)
	out = append(out, bodyHead...)
	for i := lo; i < hi; i++ {
		if i > lo {
			out = append(out, ',')
		}
		out = append(out, b.buf[b.starts[i]:b.ends[i]]...)
	}
	return append(out, "]}"...)
}

// tag is a resource tag, pre-encoded as `"key":"value"` once per resource.
type tag struct {
	k   string
	enc []byte
}

// encode appends the records of md to b.
func (e *encoder) encode(md pmetric.Metrics, b *batch) {
	nowMs := e.now().UnixMilli()
	var resTags []tag
	var head []byte
	ord := 0
	rms := md.ResourceMetrics()
	for i := 0; i < rms.Len(); i++ {
		rm := rms.At(i)
		resTags = resTags[:0]
		for _, k := range e.resourceTags {
			if v, ok := rm.Resource().Attributes().Get(k); ok {
				enc := appendString(nil, k)
				enc = append(enc, ':')
				resTags = append(resTags, tag{k, appendString(enc, v.AsString())})
			}
		}
		sms := rm.ScopeMetrics()
		for j := 0; j < sms.Len(); j++ {
			ms := sms.At(j).Metrics()
			for k := 0; k < ms.Len(); k++ {
				ord, head = e.encodeMetric(ms.At(k), resTags, head, nowMs, ord, b)
			}
		}
	}
}

// header encodes what all records of one metric share, once per metric:
// `{"metric_name":...,"type":...[,"temporality":...],"tags":{`.
func (e *encoder) header(dst []byte, name, typ, temp string) []byte {
	dst = append(dst[:0], `{"metric_name":`...)
	dst = appendString2(dst, e.prefix, name)
	dst = append(dst, `,"type":"`...)
	dst = append(dst, typ...)
	dst = append(dst, '"')
	if temp != "" {
		dst = append(dst, `,"temporality":"`...)
		dst = append(dst, temp...)
		dst = append(dst, '"')
	}
	return append(dst, `,"tags":{`...)
}

// encodeMetric appends one record per data point of m; it returns the next
// data point ordinal and the header buffer for reuse.
func (e *encoder) encodeMetric(m pmetric.Metric, resTags []tag, head []byte, nowMs int64, ord int, b *batch) (int, []byte) {
	name := m.Name()
	switch m.Type() {
	case pmetric.MetricTypeGauge:
		head = e.header(head, name, typeGauge, "")
		ord = e.numbers(b, head, name, m.Gauge().DataPoints(), resTags, nowMs, ord)
	case pmetric.MetricTypeSum:
		s := m.Sum()
		typ, temp := typeCounter, temporality(s.AggregationTemporality())
		// A non-monotonic cumulative sum (an up-down counter) is a level: a gauge.
		if !s.IsMonotonic() && s.AggregationTemporality() == pmetric.AggregationTemporalityCumulative {
			typ, temp = typeGauge, ""
		}
		head = e.header(head, name, typ, temp)
		ord = e.numbers(b, head, name, s.DataPoints(), resTags, nowMs, ord)
	case pmetric.MetricTypeHistogram:
		h := m.Histogram()
		head = e.header(head, name, typeDistribution, temporality(h.AggregationTemporality()))
		for i, dps := 0, h.DataPoints(); i < dps.Len(); i, ord = i+1, ord+1 {
			e.histogram(b, head, name, dps.At(i), resTags, nowMs, ord)
		}
	case pmetric.MetricTypeExponentialHistogram:
		h := m.ExponentialHistogram()
		head = e.header(head, name, typeDistribution, temporality(h.AggregationTemporality()))
		for i, dps := 0, h.DataPoints(); i < dps.Len(); i, ord = i+1, ord+1 {
			e.expHistogram(b, head, name, dps.At(i), resTags, nowMs, ord)
		}
	case pmetric.MetricTypeSummary:
		head = e.header(head, name, typeSummary, "")
		for i, dps := 0, m.Summary().DataPoints(); i < dps.Len(); i, ord = i+1, ord+1 {
			e.summary(b, head, name, dps.At(i), resTags, nowMs, ord)
		}
	}
	return ord, head
}

// numbers appends the records of a gauge's or a sum's points from ordinal
// ord and returns the next ordinal.
func (e *encoder) numbers(b *batch, head []byte, name string, dps pmetric.NumberDataPointSlice, resTags []tag, nowMs int64, ord int) int {
	for i := 0; i < dps.Len(); i, ord = i+1, ord+1 {
		e.number(b, head, name, dps.At(i), resTags, nowMs, ord)
	}
	return ord
}

func temporality(t pmetric.AggregationTemporality) string {
	switch t {
	case pmetric.AggregationTemporalityDelta:
		return "delta"
	case pmetric.AggregationTemporalityCumulative:
		return "cumulative"
	}
	return ""
}

// begin writes the fields every record has, up to and including "timestamp".
func (e *encoder) begin(b *batch, buf, head []byte, attrs pcommon.Map, resTags []tag, ts pcommon.Timestamp, nowMs int64) []byte {
	if len(b.ends) > 0 {
		buf = append(buf, ',')
	}
	b.starts = append(b.starts, len(buf))
	buf = append(buf, head...)
	first := true
	for k, v := range attrs.All() {
		if !first {
			buf = append(buf, ',')
		}
		first = false
		buf = appendString(buf, k)
		buf = append(buf, ':')
		if v.Type() == pcommon.ValueTypeStr {
			buf = appendString(buf, v.Str())
		} else {
			buf = appendString(buf, v.AsString())
		}
	}
	for _, t := range resTags {
		if _, dup := attrs.Get(t.k); dup {
			continue
		}
		if !first {
			buf = append(buf, ',')
		}
		first = false
		buf = append(buf, t.enc...)
	}
	buf = append(buf, `},"timestamp":`...)
	ms := nowMs
	if ts != 0 {
		ms = int64(ts) / int64(time.Millisecond)
	}
	return strconv.AppendInt(buf, ms, 10)
}

// end closes the record being written and registers it.
func (b *batch) end(buf []byte, ord int) {
	b.buf = append(buf, '}')
	b.ends = append(b.ends, len(b.buf))
	b.ords = append(b.ords, ord)
}

// drop discards a record being written from start on and counts it invalid.
func (b *batch) drop(buf []byte, start int, name string) {
	b.buf = buf[:start]
	if len(b.starts) > len(b.ends) {
		b.starts = b.starts[:len(b.ends)]
	}
	if b.invalid == 0 {
		b.firstInvalid = name
	}
	b.invalid++
}

func (e *encoder) number(b *batch, head []byte, name string, dp pmetric.NumberDataPoint, resTags []tag, nowMs int64, ord int) {
	buf := b.buf
	start := len(buf)
	if dp.Flags().NoRecordedValue() {
		b.drop(buf, start, name)
		return
	}
	buf = e.begin(b, buf, head, dp.Attributes(), resTags, dp.Timestamp(), nowMs)
	buf = append(buf, `,"value":`...)
	switch dp.ValueType() {
	case pmetric.NumberDataPointValueTypeInt:
		buf = strconv.AppendInt(buf, dp.IntValue(), 10)
	case pmetric.NumberDataPointValueTypeDouble:
		if !finite(dp.DoubleValue()) {
			b.drop(buf, start, name)
			return
		}
		buf = appendFloat(buf, dp.DoubleValue())
	default:
		b.drop(buf, start, name)
		return
	}
	b.end(buf, ord)
}

// dist is what every distribution point has: count, and sum, min and max
// when present.
type dist struct {
	count  uint64
	hasSum bool
	sum    float64
	hasMin bool
	min    float64
	hasMax bool
	max    float64
}

// distBegin starts a distribution record in b: the fields every record
// has, count, sum, min and max, and the opening of "buckets". It drops the
// point and returns false when skip is set or a statistic is not finite;
// start is where the record began (for a later drop).
func (e *encoder) distBegin(b *batch, skip bool, head []byte, name string, attrs pcommon.Map, resTags []tag,
	ts pcommon.Timestamp, nowMs int64, d dist,
) (buf []byte, start int, ok bool) {
	buf = b.buf
	start = len(buf)
	if skip {
		b.drop(buf, start, name)
		return buf, start, false
	}
	buf = e.begin(b, buf, head, attrs, resTags, ts, nowMs)
	if buf, ok = distHead(buf, d); !ok {
		b.drop(buf, start, name)
		return buf, start, false
	}
	return append(buf, `,"buckets":[`...), start, true
}

// distHead writes count, sum, min and max of a distribution; false if one is
// not finite.
func distHead(buf []byte, d dist) ([]byte, bool) {
	buf = append(buf, `,"count":`...)
	buf = strconv.AppendUint(buf, d.count, 10)
	if d.hasSum {
		if !finite(d.sum) {
			return buf, false
		}
		buf = append(buf, `,"sum":`...)
		buf = appendFloat(buf, d.sum)
	}
	if d.hasMin {
		if !finite(d.min) {
			return buf, false
		}
		buf = append(buf, `,"min":`...)
		buf = appendFloat(buf, d.min)
	}
	if d.hasMax {
		if !finite(d.max) {
			return buf, false
		}
		buf = append(buf, `,"max":`...)
		buf = appendFloat(buf, d.max)
	}
	return buf, true
}

func appendBucket(buf []byte, first bool, le float64, count uint64) []byte {
	if !first {
		buf = append(buf, ',')
	}
	buf = append(buf, `{"le":`...)
	buf = appendFloat(buf, le)
	buf = append(buf, `,"count":`...)
	buf = strconv.AppendUint(buf, count, 10)
	return append(buf, '}')
}

func appendInfBucket(buf []byte, first bool, count uint64) []byte {
	if !first {
		buf = append(buf, ',')
	}
	buf = append(buf, `{"le":"+Inf","count":`...)
	buf = strconv.AppendUint(buf, count, 10)
	return append(buf, "}]"...)
}

func (e *encoder) histogram(b *batch, head []byte, name string, dp pmetric.HistogramDataPoint, resTags []tag, nowMs int64, ord int) {
	bounds, counts := dp.ExplicitBounds(), dp.BucketCounts()
	skip := dp.Flags().NoRecordedValue() || (counts.Len() != 0 && counts.Len() != bounds.Len()+1)
	buf, start, ok := e.distBegin(b, skip, head, name, dp.Attributes(), resTags, dp.Timestamp(), nowMs,
		dist{dp.Count(), dp.HasSum(), dp.Sum(), dp.HasMin(), dp.Min(), dp.HasMax(), dp.Max()})
	if !ok {
		return
	}
	if counts.Len() == 0 {
		// No buckets recorded: everything is in the overflow bucket.
		buf = appendInfBucket(buf, true, dp.Count())
		b.end(buf, ord)
		return
	}
	for i := 0; i < bounds.Len(); i++ {
		if !finite(bounds.At(i)) {
			b.drop(buf, start, name)
			return
		}
		buf = appendBucket(buf, i == 0, bounds.At(i), counts.At(i))
	}
	buf = appendInfBucket(buf, bounds.Len() == 0, counts.At(bounds.Len()))
	b.end(buf, ord)
}

// expHistogram converts an exponential histogram to explicit buckets: the
// upper bound of positive bucket i is base^(offset+i+1), of negative bucket i
// -base^(offset+i), with base = 2^(2^-scale); the zero bucket's bound is the
// zero threshold. Bucket counts stay per bucket.
func (e *encoder) expHistogram(b *batch, head []byte, name string, dp pmetric.ExponentialHistogramDataPoint, resTags []tag, nowMs int64, ord int) {
	buf, _, ok := e.distBegin(b, dp.Flags().NoRecordedValue(), head, name, dp.Attributes(), resTags, dp.Timestamp(), nowMs,
		dist{dp.Count(), dp.HasSum(), dp.Sum(), dp.HasMin(), dp.Min(), dp.HasMax(), dp.Max()})
	if !ok {
		return
	}
	scale := dp.Scale()
	first := true
	var overflow uint64
	neg := dp.Negative()
	nc := neg.BucketCounts()
	for i := nc.Len() - 1; i >= 0; i-- {
		le := -metricstate.Boundary(scale, neg.Offset()+int32(i))
		if !finite(le) {
			// Below -MaxFloat64: no finite bound to attach; the lowest finite
			// bucket that follows absorbs it.
			overflow += nc.At(i)
			continue
		}
		buf = appendBucket(buf, first, le, nc.At(i)+overflow)
		overflow, first = 0, false
	}
	if dp.ZeroCount() > 0 || overflow > 0 {
		buf = appendBucket(buf, first, dp.ZeroThreshold(), dp.ZeroCount()+overflow)
		overflow, first = 0, false
	}
	pos := dp.Positive()
	pc := pos.BucketCounts()
	for i := 0; i < pc.Len(); i++ {
		le := metricstate.Boundary(scale, pos.Offset()+int32(i)+1)
		if !finite(le) {
			overflow += pc.At(i)
			continue
		}
		buf = appendBucket(buf, first, le, pc.At(i))
		first = false
	}
	buf = appendInfBucket(buf, first, overflow)
	b.end(buf, ord)
}

func (e *encoder) summary(b *batch, head []byte, name string, dp pmetric.SummaryDataPoint, resTags []tag, nowMs int64, ord int) {
	buf := b.buf
	start := len(buf)
	if dp.Flags().NoRecordedValue() || !finite(dp.Sum()) {
		b.drop(buf, start, name)
		return
	}
	buf = e.begin(b, buf, head, dp.Attributes(), resTags, dp.Timestamp(), nowMs)
	buf = append(buf, `,"count":`...)
	buf = strconv.AppendUint(buf, dp.Count(), 10)
	buf = append(buf, `,"sum":`...)
	buf = appendFloat(buf, dp.Sum())
	buf = append(buf, `,"quantiles":{`...)
	qs := dp.QuantileValues()
	for i := 0; i < qs.Len(); i++ {
		q := qs.At(i)
		if !finite(q.Value()) || !finite(q.Quantile()) {
			b.drop(buf, start, name)
			return
		}
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, '"')
		buf = strconv.AppendFloat(buf, q.Quantile(), 'g', -1, 64)
		buf = append(buf, `":`...)
		buf = appendFloat(buf, q.Value())
	}
	buf = append(buf, '}')
	b.end(buf, ord)
}

func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

// appendFloat writes f like encoding/json does (shortest form; exponent only
// for very large or small magnitudes).
func appendFloat(b []byte, f float64) []byte {
	if f == math.Trunc(f) && f >= -1e15 && f <= 1e15 && !(f == 0 && math.Signbit(f)) {
		return strconv.AppendInt(b, int64(f), 10) // integral: the common case, 3x faster
	}
	abs := math.Abs(f)
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		return strconv.AppendFloat(b, f, 'e', -1, 64)
	}
	return strconv.AppendFloat(b, f, 'f', -1, 64)
}

// appendString writes s as a JSON string; invalid UTF-8 becomes U+FFFD.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	b = jsonenc.AppendEscaped(b, s)
	return append(b, '"')
}

// appendString2 writes the concatenation a+b as one JSON string.
func appendString2(b []byte, s1, s2 string) []byte {
	b = append(b, '"')
	b = jsonenc.AppendEscaped(b, s1)
	b = jsonenc.AppendEscaped(b, s2)
	return append(b, '"')
}
