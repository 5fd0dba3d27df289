package cardinalityguardprocessor // import "github.com/anvil/anvilcol/processor/cardinalityguardprocessor"

import (
	"context"
	"math"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/anvil/anvilcol/internal/clock"
	"github.com/anvil/anvilcol/internal/metricstate"
	"github.com/anvil/anvilcol/processor/cardinalityguardprocessor/internal/metadata"
)

// guard is the processor: configuration resolved into rules, and the state of
// every metric stream. One mutex: a batch is processed as a unit.
type guard struct {
	defaults  *rules
	overrides map[string]*rules
	clk       clock.Clock
	base      time.Time
	ttlTicks  uint32 // series_ttl in seconds
	sweepStep uint32
	telemetry *metadata.TelemetryBuilder

	mu        sync.Mutex
	streams   map[streamKey]*stream
	nextSweep uint32
	gen       uint64
	cutoff    uint32 // this batch: state seen before this tick is expired

	// Per-batch scratch, reused.
	touched   []touchedSeries
	remove    []bool
	removeIdx int
	rmNum     func(pmetric.NumberDataPoint) bool
	hist      histKind[pmetric.HistogramDataPoint]
	exp       histKind[pmetric.ExponentialHistogramDataPoint]
	summary   histKind[pmetric.SummaryDataPoint]
	cur       metricstate.Histogram
	inc       metricstate.Histogram
	counts    batchCounts
}

type touchedSeries struct {
	o  *outSeries
	st *stream
}

type batchCounts struct {
	dropped, overflow, mergeErrors, stale, evicted int64
}

func newGuard(set component.TelemetrySettings, cfg *Config, clk clock.Clock) (*guard, error) {
	g := &guard{
		defaults:  newRules(false, cfg.DropAttributes, cfg.MaxSeriesPerMetric),
		overrides: make(map[string]*rules, len(cfg.Metrics)),
		clk:       clk,
		base:      clk.Now(),
		ttlTicks:  uint32(max(1, (cfg.SeriesTTL+time.Second-1)/time.Second)),
		streams:   make(map[streamKey]*stream),
	}
	g.sweepStep = min(60, max(1, g.ttlTicks/10))
	g.rmNum = marked[pmetric.NumberDataPoint](g)
	g.hist = histKind[pmetric.HistogramDataPoint]{metricstate.Explicit, (*metricstate.Histogram).ReadExplicit,
		func(o *outSeries, dp pmetric.HistogramDataPoint) { o.hist = dp }, marked[pmetric.HistogramDataPoint](g)}
	g.exp = histKind[pmetric.ExponentialHistogramDataPoint]{metricstate.Exponential, (*metricstate.Histogram).ReadExponential,
		func(o *outSeries, dp pmetric.ExponentialHistogramDataPoint) { o.exp = dp }, marked[pmetric.ExponentialHistogramDataPoint](g)}
	g.summary = histKind[pmetric.SummaryDataPoint]{metricstate.Summary, (*metricstate.Histogram).ReadSummary,
		func(o *outSeries, dp pmetric.SummaryDataPoint) { o.summary = dp }, marked[pmetric.SummaryDataPoint](g)}
	for name, mc := range cfg.Metrics {
		maxSeries := cfg.MaxSeriesPerMetric
		if mc.MaxSeries != nil {
			maxSeries = *mc.MaxSeries
		}
		if mc.AllowedAttributes != nil {
			g.overrides[name] = newRules(true, mc.AllowedAttributes, maxSeries)
		} else {
			g.overrides[name] = newRules(false, cfg.DropAttributes, maxSeries)
		}
	}
	tb, err := metadata.NewTelemetryBuilder(set)
	if err != nil {
		return nil, err
	}
	g.telemetry = tb
	if err := tb.RegisterCardinalityGuardActiveSeriesCallback(g.observeActiveSeries); err != nil {
		return nil, err
	}
	return g, nil
}

func (g *guard) shutdown(context.Context) error {
	g.telemetry.Shutdown()
	return nil
}

func (g *guard) observeActiveSeries(_ context.Context, o metric.Int64Observer) error {
	g.mu.Lock()
	byName := make(map[string]int64)
	for _, st := range g.streams {
		byName[st.name] += int64(st.activeSeries())
	}
	g.mu.Unlock()
	for name, n := range byName {
		o.Observe(n, metric.WithAttributes(attribute.String("metric", name)))
	}
	return nil
}

// tick is the clock in whole seconds since start, from 1.
func (g *guard) tick() uint32 {
	d := g.clk.Now().Sub(g.base)
	if d < 0 {
		d = 0
	}
	return uint32(d/time.Second) + 1
}

// sweep frees expired state of every stream; it runs every sweepStep, while
// a stream at its cap also frees its expired series at once (route).
func (g *guard) sweep() {
	g.nextSweep = g.cutoff + g.ttlTicks - 1 + g.sweepStep
	if g.cutoff == 0 {
		return
	}
	for k, st := range g.streams {
		g.counts.evicted += int64(st.evict(g.cutoff))
		if st.empty() {
			delete(g.streams, k)
		}
	}
}

// processMetrics walks the batch once, in place: each point is routed to its
// output series; the first point of a series in the batch becomes its output
// point (attributes reduced) and later ones fold into it and are removed.
func (g *guard) processMetrics(ctx context.Context, md pmetric.Metrics) (pmetric.Metrics, error) {
	g.mu.Lock()
	tick := g.tick()
	g.cutoff = 0
	if tick >= g.ttlTicks {
		g.cutoff = tick - g.ttlTicks + 1 // seen before cutoff: unseen for >= series_ttl
	}
	if tick >= g.nextSweep {
		g.sweep()
	}
	g.gen++
	g.touched = g.touched[:0]
	g.counts = batchCounts{evicted: g.counts.evicted}

	rms := md.ResourceMetrics()
	pruneRM := false
	for i := 0; i < rms.Len(); i++ {
		rm := rms.At(i)
		rh := metricstate.HashAttributes(rm.Resource().Attributes())
		sms := rm.ScopeMetrics()
		pruneSM := false
		for j := 0; j < sms.Len(); j++ {
			sm := sms.At(j)
			sh := metricstate.HashScope(sm.Scope())
			ms := sm.Metrics()
			pruneM := false
			for k := 0; k < ms.Len(); k++ {
				if g.processMetric(rh, sh, ms.At(k), tick) {
					pruneM = true
				}
			}
			if pruneM {
				ms.RemoveIf(func(m pmetric.Metric) bool { return pointCount(m) == 0 })
				pruneSM = pruneSM || ms.Len() == 0
			}
		}
		if pruneSM {
			sms.RemoveIf(func(sm pmetric.ScopeMetrics) bool { return sm.Metrics().Len() == 0 })
			pruneRM = pruneRM || sms.Len() == 0
		}
	}
	if pruneRM {
		rms.RemoveIf(func(rm pmetric.ResourceMetrics) bool { return rm.ScopeMetrics().Len() == 0 })
	}
	g.finalize()
	c := g.counts
	g.counts.evicted = 0
	g.mu.Unlock()
	g.record(ctx, c)
	return md, nil
}

func (g *guard) record(ctx context.Context, c batchCounts) {
	t := g.telemetry
	if c.dropped > 0 {
		t.CardinalityGuardAttributesDropped.Add(ctx, c.dropped)
	}
	if c.overflow > 0 {
		t.CardinalityGuardOverflowPoints.Add(ctx, c.overflow)
	}
	if c.mergeErrors > 0 {
		t.CardinalityGuardMergeErrors.Add(ctx, c.mergeErrors)
	}
	if c.stale > 0 {
		t.CardinalityGuardStalePointsDropped.Add(ctx, c.stale)
	}
	if c.evicted > 0 {
		t.CardinalityGuardSeriesEvicted.Add(ctx, c.evicted)
	}
}

func pointCount(m pmetric.Metric) int {
	switch m.Type() {
	case pmetric.MetricTypeSum:
		return m.Sum().DataPoints().Len()
	case pmetric.MetricTypeGauge:
		return m.Gauge().DataPoints().Len()
	case pmetric.MetricTypeHistogram:
		return m.Histogram().DataPoints().Len()
	case pmetric.MetricTypeExponentialHistogram:
		return m.ExponentialHistogram().DataPoints().Len()
	case pmetric.MetricTypeSummary:
		return m.Summary().DataPoints().Len()
	}
	return -1 // never prune what we do not understand
}

func (g *guard) stream(rh, sh uint64, m pmetric.Metric) *stream {
	kind, cumulative, monotonic := metricKind(m)
	key := streamKey{resource: rh, scope: sh, name: m.Name(), kind: kind}
	st := g.streams[key]
	if st == nil {
		r := g.overrides[key.name]
		if r == nil {
			r = g.defaults
		}
		st = &stream{
			name: key.name, typ: m.Type(), rules: r,
			cumulative: cumulative, monotonic: monotonic,
			series: make(map[uint64]*outSeries),
		}
		if cumulative {
			if m.Type() == pmetric.MetricTypeSum {
				st.inputs = &numTable{}
			} else {
				st.histInputs = make(map[uint64]*histInput)
			}
		}
		g.streams[key] = st
	}
	return st
}

// processMetric guards one metric; it reports whether it removed points
// (then the metric may have become empty).
func (g *guard) processMetric(rh, sh uint64, m pmetric.Metric, tick uint32) bool {
	if pointCount(m) <= 0 {
		return false
	}
	st := g.stream(rh, sh, m)
	switch m.Type() {
	case pmetric.MetricTypeSum:
		return g.numbers(st, m.Sum().DataPoints(), false, tick)
	case pmetric.MetricTypeGauge:
		return g.numbers(st, m.Gauge().DataPoints(), true, tick)
	case pmetric.MetricTypeHistogram:
		return guardHistograms(g, st, m.Histogram().DataPoints(), &g.hist, tick)
	case pmetric.MetricTypeExponentialHistogram:
		return guardHistograms(g, st, m.ExponentialHistogram().DataPoints(), &g.exp, tick)
	case pmetric.MetricTypeSummary:
		return guardHistograms(g, st, m.Summary().DataPoints(), &g.summary, tick)
	}
	return false
}

// route finds the output series for surviving-attribute hash red, creating it
// while the stream is under its cap, else the overflow series.
func (g *guard) route(st *stream, red uint64) (*outSeries, bool) {
	if st.last != nil && st.lastRed == red {
		return st.last, false
	}
	if o, ok := st.series[red]; ok {
		st.last, st.lastRed = o, red
		return o, false
	}
	if st.rules.cap != 0 && len(st.series) >= st.rules.cap && g.cutoff > st.evictedAt {
		g.counts.evicted += int64(st.evictSeries(g.cutoff))
	}
	if st.rules.cap == 0 || len(st.series) < st.rules.cap {
		o := &outSeries{}
		st.series[red] = o
		st.last, st.lastRed = o, red
		return o, false
	}
	return g.overflowSeries(st), true
}

func (g *guard) overflowSeries(st *stream) *outSeries {
	if st.overflow == nil {
		st.overflow = &outSeries{collapsed: true}
	}
	return st.overflow
}

// fold books a point into output series o. It returns true when the point is
// o's output point in this batch (its attributes are then reduced in place),
// false when it folds into an earlier one and must be removed.
func (g *guard) fold(st *stream, o *outSeries, ovf bool, nDrop int, attrs pcommon.Map, start, ts pcommon.Timestamp, tick uint32) bool {
	if o.gen != g.gen {
		return g.foldFirst(st, o, ovf, nDrop, attrs, start, ts, tick)
	}
	if ovf {
		g.counts.overflow++
		nDrop = attrs.Len()
	}
	g.merge(o, nDrop, start, ts, tick)
	return false
}

// merge books a later point of o in this batch (small: inlined in the loops).
func (g *guard) merge(o *outSeries, nDrop int, start, ts pcommon.Timestamp, tick uint32) {
	g.counts.dropped += int64(nDrop)
	o.seen, o.merged = tick, true
	o.collapsed = o.collapsed || nDrop > 0
	if start != 0 && (o.minStart == 0 || start < o.minStart) {
		o.minStart = start
	}
	if ts > o.maxTime {
		o.maxTime = ts
	}
}

// foldFirst books the first point of o in this batch: it becomes o's output
// point.
func (g *guard) foldFirst(st *stream, o *outSeries, ovf bool, nDrop int, attrs pcommon.Map, start, ts pcommon.Timestamp, tick uint32) bool {
	o.seen = tick
	if ovf {
		g.counts.overflow++
		g.counts.dropped += int64(attrs.Len())
	} else {
		g.counts.dropped += int64(nDrop)
	}
	if ovf || nDrop > 0 {
		o.collapsed = true
	}
	o.gen, o.merged, o.minStart, o.maxTime = g.gen, false, start, ts
	g.touched = append(g.touched, touchedSeries{o: o, st: st})
	if ovf {
		attrs.Clear()
		attrs.PutBool(OverflowAttribute, true)
	} else if nDrop > 0 {
		st.rules.strip(attrs)
	}
	return true
}

// stale marks a staleness marker (no recorded value) for removal, counted.
func (g *guard) stale(marks []bool, i int, f pmetric.DataPointFlags) bool {
	if !f.NoRecordedValue() {
		return false
	}
	marks[i] = true
	g.counts.stale++
	return true
}

func (g *guard) removeBuf(n int) []bool {
	if cap(g.remove) < n {
		g.remove = make([]bool, n)
	}
	g.remove = g.remove[:n]
	clear(g.remove)
	return g.remove
}

// marked is the RemoveIf predicate removing the points marked in g.remove
// (RemoveIf visits in order). Made once per point type: a closure made per
// call would be an allocation per batch and metric.
func marked[T any](g *guard) func(T) bool {
	return func(T) bool {
		r := g.remove[g.removeIdx]
		g.removeIdx++
		return r
	}
}

func numValue(dp pmetric.NumberDataPoint) float64 {
	if dp.ValueType() == pmetric.NumberDataPointValueTypeInt {
		return float64(dp.IntValue())
	}
	return dp.DoubleValue()
}

func setNumValue(dp pmetric.NumberDataPoint, v float64, double bool) {
	if double || dp.ValueType() == pmetric.NumberDataPointValueTypeDouble {
		dp.SetDoubleValue(v)
		return
	}
	dp.SetIntValue(int64(math.Round(v)))
}

// numbers guards sums (delta: points add; cumulative: per-input state) and
// gauges (the latest point wins).
func (g *guard) numbers(st *stream, dps pmetric.NumberDataPointSlice, gauge bool, tick uint32) bool {
	marks := g.removeBuf(dps.Len())
	removed := false
	cumulative := st.cumulative && !gauge
	for i := 0; i < dps.Len(); i++ {
		dp := dps.At(i)
		if g.stale(marks, i, dp.Flags()) {
			removed = true
			continue
		}
		attrs := dp.Attributes()
		full, red, nDrop := st.hash(attrs, cumulative)
		v := numValue(dp)
		var o *outSeries
		var ovf bool
		if cumulative {
			in, known := st.inputs.upsert(full)
			if known && in.seen&^overflowBit < g.cutoff {
				known = false // expired: a new input
			}
			if known && in.overflow() {
				o, ovf = g.overflowSeries(st), true
			} else {
				o, ovf = g.route(st, red)
			}
			sh := metricstate.HashStart(dp.StartTimestamp())
			inc := v // a new input counts from zero
			if known {
				inc = metricstate.SumDelta(in.last, v, st.monotonic, metricstate.Restarted(in.start, sh))
			}
			if o.start == 0 {
				o.start = dp.StartTimestamp()
			}
			o.total += inc
			in.last, in.start, in.seen = v, sh, tick
			if ovf {
				in.seen |= overflowBit
			}
		} else {
			o, ovf = g.route(st, red)
		}
		if dp.ValueType() == pmetric.NumberDataPointValueTypeDouble {
			o.isDouble = true
		}
		if o.gen == g.gen && !ovf {
			g.merge(o, nDrop, dp.StartTimestamp(), dp.Timestamp(), tick) // fold's common case
		} else if g.fold(st, o, ovf, nDrop, attrs, dp.StartTimestamp(), dp.Timestamp(), tick) {
			o.num, o.batchSum = dp, v
			continue
		}
		marks[i], removed = true, true
		switch {
		case gauge:
			if dp.Timestamp() >= o.num.Timestamp() {
				o.num.SetTimestamp(dp.Timestamp())
				o.num.SetStartTimestamp(dp.StartTimestamp())
				o.num.SetFlags(dp.Flags())
				setNumValue(o.num, v, dp.ValueType() == pmetric.NumberDataPointValueTypeDouble)
			}
		case !cumulative:
			o.batchSum += v
		}
	}
	if removed {
		g.removeIdx = 0
		dps.RemoveIf(g.rmNum)
	}
	return removed
}

// histRoute returns the input state of a cumulative histogram-like point
// and its output series.
func (g *guard) histRoute(st *stream, full, red uint64) (*histInput, *outSeries, bool) {
	if !st.cumulative {
		o, ovf := g.route(st, red)
		return nil, o, ovf
	}
	in := st.histInputs[full]
	if in != nil && in.seen < g.cutoff {
		delete(st.histInputs, full) // expired: a new input
		in = nil
	}
	if in != nil && in.overflow {
		return in, g.overflowSeries(st), true
	}
	o, ovf := g.route(st, red)
	return in, o, ovf
}

// cumulate updates input state `in` (nil: new input) with g.cur and returns
// the increase to add to the output total.
func (g *guard) cumulate(st *stream, in *histInput, full uint64, start pcommon.Timestamp, ovf bool, tick uint32, k metricstate.Kind) *metricstate.Histogram {
	sh := metricstate.HashStart(start)
	inc := &g.cur
	if in != nil && !metricstate.Restarted(in.start, sh) && g.inc.Delta(k, &g.cur, &in.last) {
		inc = &g.inc
	}
	if in == nil {
		in = &histInput{}
		st.histInputs[full] = in
	}
	in.last.CopyFrom(&g.cur)
	in.start, in.seen, in.overflow = sh, tick, ovf
	return inc
}

// histPoint is a histogram-like point: explicit, exponential or summary.
type histPoint interface {
	pmetric.HistogramDataPoint | pmetric.ExponentialHistogramDataPoint | pmetric.SummaryDataPoint
	Flags() pmetric.DataPointFlags
	Attributes() pcommon.Map
	StartTimestamp() pcommon.Timestamp
	Timestamp() pcommon.Timestamp
}

// histPoints is a slice of histogram-like points.
type histPoints[P histPoint] interface {
	Len() int
	At(int) P
	RemoveIf(func(P) bool)
}

// histKind is how the guard handles one type of histogram-like point; made
// once per guard.
type histKind[P histPoint] struct {
	kind metricstate.Kind
	read func(*metricstate.Histogram, P)
	keep func(*outSeries, P) // P becomes o's output point
	rm   func(P) bool        // the RemoveIf predicate (marked)
}

// guardHistograms guards histograms, exponential histograms and summaries
// (always cumulative): per-input state for cumulative streams, points of a
// batch added for delta ones.
func guardHistograms[P histPoint, S histPoints[P]](g *guard, st *stream, dps S, hk *histKind[P], tick uint32) bool {
	marks := g.removeBuf(dps.Len())
	removed := false
	for i := 0; i < dps.Len(); i++ {
		dp := dps.At(i)
		if g.stale(marks, i, dp.Flags()) {
			removed = true
			continue
		}
		attrs := dp.Attributes()
		full, red, nDrop := st.hash(attrs, st.cumulative)
		in, o, ovf := g.histRoute(st, full, red)
		hk.read(&g.cur, dp)
		// Explicit points with other bounds cannot merge: counted, kept
		// untouched as their own series (original attributes).
		if hk.kind == metricstate.Explicit && o.agg != nil && (st.cumulative || o.gen == g.gen) && !metricstate.SameBounds(&g.cur, o.agg) {
			g.counts.mergeErrors++
			continue
		}
		if st.cumulative {
			inc := g.cumulate(st, in, full, dp.StartTimestamp(), ovf, tick, hk.kind)
			if o.agg == nil {
				o.agg, o.start = &metricstate.Histogram{}, dp.StartTimestamp()
				o.agg.CopyFrom(inc)
			} else {
				o.agg.Add(hk.kind, inc)
			}
		}
		first := g.fold(st, o, ovf, nDrop, attrs, dp.StartTimestamp(), dp.Timestamp(), tick)
		if first {
			hk.keep(o, dp)
		} else {
			marks[i], removed = true, true
		}
		if !st.cumulative {
			if first {
				if o.agg == nil {
					o.agg = &metricstate.Histogram{}
				}
				o.agg.CopyFrom(&g.cur)
			} else {
				o.agg.Add(hk.kind, &g.cur)
			}
		}
	}
	if removed {
		g.removeIdx = 0
		dps.RemoveIf(hk.rm)
	}
	return removed
}

// finalize writes the value of every output series touched in this batch
// into its output point.
func (g *guard) finalize() {
	for _, t := range g.touched {
		o, st := t.o, t.st
		start := o.minStart
		if st.cumulative {
			start = o.start
		}
		switch st.typ {
		case pmetric.MetricTypeGauge:
			continue // the latest point is already in place
		case pmetric.MetricTypeSum:
			v := o.batchSum
			if st.cumulative {
				v = o.total
			}
			setNumValue(o.num, v, o.isDouble)
			o.num.SetStartTimestamp(start)
			o.num.SetTimestamp(o.maxTime)
		case pmetric.MetricTypeHistogram:
			o.agg.WriteExplicit(o.hist)
			o.hist.SetStartTimestamp(start)
			o.hist.SetTimestamp(o.maxTime)
		case pmetric.MetricTypeExponentialHistogram:
			o.agg.WriteExponential(o.exp)
			o.exp.SetStartTimestamp(start)
			o.exp.SetTimestamp(o.maxTime)
		case pmetric.MetricTypeSummary:
			o.summary.SetCount(o.agg.Count)
			o.summary.SetSum(o.agg.Sum)
			if o.collapsed || o.merged {
				// Quantiles of merged summaries cannot be known.
				o.summary.QuantileValues().RemoveIf(func(pmetric.SummaryDataPointValueAtQuantile) bool { return true })
			}
			o.summary.SetStartTimestamp(start)
			o.summary.SetTimestamp(o.maxTime)
		}
		// Drop the batch's handles so the batch can be collected.
		o.num, o.hist, o.exp, o.summary = pmetric.NumberDataPoint{}, pmetric.HistogramDataPoint{}, pmetric.ExponentialHistogramDataPoint{}, pmetric.SummaryDataPoint{}
	}
}
