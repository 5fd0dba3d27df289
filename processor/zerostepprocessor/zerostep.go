package zerostepprocessor // import "github.com/anvil/anvilcol/processor/zerostepprocessor"

import (
	"context"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.uber.org/zap"

	"github.com/anvil/anvilcol/internal/clock"
	"github.com/anvil/anvilcol/internal/metricstate"
	"github.com/anvil/anvilcol/internal/ratelog"
)

// series is what the processor remembers of one cumulative series.
type series struct {
	start pcommon.Timestamp // the series' start time: a new one is a new run (a restart)
	until time.Time         // shown at zero until then (zero: not held)
	seen  time.Time
	// pending is the latest real point of a held series (one resource, scope,
	// metric and point), sent when the hold ends unless a later point came.
	pending pmetric.Metrics
	hasPend bool
}

type zeroStep struct {
	cfg    *Config
	next   consumer.Metrics
	clk    clock.Clock
	errLog *ratelog.Logger

	mu     sync.Mutex
	series map[uint64]*series

	stop chan struct{}
	wg   sync.WaitGroup
}

func newZeroStep(cfg *Config, next consumer.Metrics, logger *zap.Logger, clk clock.Clock) *zeroStep {
	return &zeroStep{cfg: cfg, next: next, clk: clk, errLog: ratelog.New(logger, ratelog.DefaultInterval),
		series: map[uint64]*series{}, stop: make(chan struct{})}
}

// tick is how often held series whose hold ended without a later point are
// sent, and forgotten series swept.
func (z *zeroStep) tick() time.Duration { return max(time.Second, min(z.cfg.Hold/10, 5*time.Second)) }

func (z *zeroStep) start(context.Context, component.Host) error {
	t := z.clk.NewTicker(z.tick())
	z.wg.Go(func() {
		defer t.Stop()
		for {
			select {
			case <-z.stop:
				return
			case <-t.C():
				z.release()
			}
		}
	})
	return nil
}

func (z *zeroStep) shutdown(context.Context) error {
	close(z.stop)
	z.wg.Wait()
	return nil
}

// release sends the pending real points of the series whose hold ended,
// and forgets series unseen for series_ttl.
func (z *zeroStep) release() {
	now := z.clk.Now()
	out := pmetric.NewMetrics()
	z.mu.Lock()
	for k, s := range z.series {
		if s.hasPend && !now.Before(s.until) {
			s.pending.ResourceMetrics().MoveAndAppendTo(out.ResourceMetrics())
			s.hasPend = false
		}
		if now.Sub(s.seen) > z.cfg.SeriesTTL {
			delete(z.series, k)
		}
	}
	z.mu.Unlock()
	if out.ResourceMetrics().Len() == 0 {
		return
	}
	if err := z.next.ConsumeMetrics(context.Background(), out); err != nil {
		z.errLog.Error("release", "zero_step: sending the real values of series whose hold ended failed", zap.Error(err))
	}
}

// process zeroes, in place, the points of new cumulative series still held.
func (z *zeroStep) process(_ context.Context, md pmetric.Metrics) (pmetric.Metrics, error) {
	now := z.clk.Now()
	z.mu.Lock()
	defer z.mu.Unlock()
	for _, rm := range md.ResourceMetrics().All() {
		rh := metricstate.HashAttributes(rm.Resource().Attributes())
		for _, sm := range rm.ScopeMetrics().All() {
			sh := rh*31 + metricstate.HashScope(sm.Scope())
			for _, m := range sm.Metrics().All() {
				mh := sh*31 + metricstate.HashString(m.Name())
				switch m.Type() {
				case pmetric.MetricTypeSum:
					s := m.Sum()
					if !s.IsMonotonic() || s.AggregationTemporality() != pmetric.AggregationTemporalityCumulative {
						continue
					}
					for _, dp := range s.DataPoints().All() {
						if z.hold(mh, dp.Attributes(), dp.StartTimestamp(), dp.Timestamp(), now, func(p pmetric.Metrics) {
							out := shell(p, rm, sm, m).SetEmptySum()
							out.SetIsMonotonic(true)
							out.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
							dp.CopyTo(out.DataPoints().AppendEmpty())
						}) {
							if dp.ValueType() == pmetric.NumberDataPointValueTypeInt {
								dp.SetIntValue(0)
							} else {
								dp.SetDoubleValue(0)
							}
						}
					}
				case pmetric.MetricTypeHistogram:
					h := m.Histogram()
					if h.AggregationTemporality() != pmetric.AggregationTemporalityCumulative {
						continue
					}
					for _, dp := range h.DataPoints().All() {
						if z.hold(mh, dp.Attributes(), dp.StartTimestamp(), dp.Timestamp(), now, func(p pmetric.Metrics) {
							out := shell(p, rm, sm, m).SetEmptyHistogram()
							out.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
							dp.CopyTo(out.DataPoints().AppendEmpty())
						}) {
							dp.SetCount(0)
							if dp.HasSum() {
								dp.SetSum(0)
							}
							dp.BucketCounts().FromRaw(make([]uint64, dp.BucketCounts().Len()))
							dp.RemoveMin()
							dp.RemoveMax()
							dp.Exemplars().RemoveIf(func(pmetric.Exemplar) bool { return true })
						}
					}
				case pmetric.MetricTypeExponentialHistogram:
					h := m.ExponentialHistogram()
					if h.AggregationTemporality() != pmetric.AggregationTemporalityCumulative {
						continue
					}
					for _, dp := range h.DataPoints().All() {
						if z.hold(mh, dp.Attributes(), dp.StartTimestamp(), dp.Timestamp(), now, func(p pmetric.Metrics) {
							out := shell(p, rm, sm, m).SetEmptyExponentialHistogram()
							out.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
							dp.CopyTo(out.DataPoints().AppendEmpty())
						}) {
							dp.SetCount(0)
							if dp.HasSum() {
								dp.SetSum(0)
							}
							dp.SetZeroCount(0)
							dp.Positive().BucketCounts().FromRaw(nil)
							dp.Negative().BucketCounts().FromRaw(nil)
							dp.RemoveMin()
							dp.RemoveMax()
							dp.Exemplars().RemoveIf(func(pmetric.Exemplar) bool { return true })
						}
					}
				case pmetric.MetricTypeSummary:
					for _, dp := range m.Summary().DataPoints().All() {
						if z.hold(mh, dp.Attributes(), dp.StartTimestamp(), dp.Timestamp(), now, func(p pmetric.Metrics) {
							dp.CopyTo(shell(p, rm, sm, m).SetEmptySummary().DataPoints().AppendEmpty())
						}) {
							dp.SetCount(0)
							dp.SetSum(0)
							dp.QuantileValues().RemoveIf(func(pmetric.SummaryDataPointValueAtQuantile) bool { return true })
						}
					}
				}
			}
		}
	}
	return md, nil
}

// hold tells whether the point of series (metric hash mh, attributes) is to
// be shown at zero; if so, save is called to keep a copy of its real value.
func (z *zeroStep) hold(mh uint64, attrs pcommon.Map, start, ts pcommon.Timestamp, now time.Time, save func(pmetric.Metrics)) bool {
	key := mh*31 + metricstate.HashAttributes(attrs)
	s, ok := z.series[key]
	if ok && start < s.start {
		// A point of an earlier run (a restarted agent replaying its queue):
		// history, passed as it is, the current run's hold left alone.
		return false
	}
	if !ok || s.start != start {
		if !ok {
			if len(z.series) >= z.cfg.MaxSeries {
				z.errLog.Warn("max_series", "zero_step: max_series reached, new series pass without a zero step")
				return false
			}
			s = &series{}
			z.series[key] = s
		}
		s.start = start
		s.until = time.Time{}
		// New: a start time, recent when this point was taken.
		if start != 0 && ts.AsTime().Sub(start.AsTime()) <= z.cfg.MaxAge {
			s.until = now.Add(z.cfg.Hold)
		}
	}
	s.seen = now
	if !now.Before(s.until) {
		if s.hasPend { // a real point passes: the pending copy is stale
			s.hasPend = false
			s.pending = pmetric.Metrics{}
		}
		return false
	}
	p := pmetric.NewMetrics()
	save(p)
	s.pending, s.hasPend = p, true
	return true
}

// shell appends to p a copy of resource rm, scope sm and metric m without
// data, and returns the metric, for one point to be copied in.
func shell(p pmetric.Metrics, rm pmetric.ResourceMetrics, sm pmetric.ScopeMetrics, m pmetric.Metric) pmetric.Metric {
	r := p.ResourceMetrics().AppendEmpty()
	rm.Resource().CopyTo(r.Resource())
	r.SetSchemaUrl(rm.SchemaUrl())
	s := r.ScopeMetrics().AppendEmpty()
	sm.Scope().CopyTo(s.Scope())
	s.SetSchemaUrl(sm.SchemaUrl())
	out := s.Metrics().AppendEmpty()
	out.SetName(m.Name())
	out.SetDescription(m.Description())
	out.SetUnit(m.Unit())
	return out
}
