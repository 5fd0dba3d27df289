package alertprocessor // import "github.com/anvil/anvilcol/processor/alertprocessor"

import (
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/anvil/anvilcol/internal/event"
	"github.com/anvil/anvilcol/internal/metricstate"
)

// consumeMetrics walks a batch once and feeds every data point of a metric
// some rule reads into that rule's window.
func (e *engine) consumeMetrics(md pmetric.Metrics) {
	if len(e.metricRules) == 0 {
		return
	}
	memo := e.metricIndex.Memo()
	in := batchLock{e: e}
	defer in.done()
	rms := md.ResourceMetrics()
	for i := 0; i < rms.Len(); i++ {
		rm := rms.At(i)
		res := rm.Resource().Attributes()
		var resHash uint64
		resHashed := false
		sms := rm.ScopeMetrics()
		for j := 0; j < sms.Len(); j++ {
			ms := sms.At(j).Metrics()
			for k := 0; k < ms.Len(); k++ {
				m := ms.At(k)
				name := m.Name()
				if name == "" {
					continue
				}
				sel := memo.Select(event.Key{Name: name})
				if len(sel.Rules) == 0 {
					continue
				}
				now := in.lock()
				if !resHashed {
					resHash, resHashed = metricstate.HashAttributes(res), true
				}
				e.consumeMetric(m, sel.Rules, res, resHash, now)
			}
		}
	}
}

// consumeMetric feeds m's points to the metric rules at positions rules.
func (e *engine) consumeMetric(m pmetric.Metric, rules []int32, res pcommon.Map, resHash uint64, now time.Time) {
	// Loops per point type, not one generic loop: a method call through a
	// type parameter is an indirect call per point.
	p := pointIngest{s: e.series, all: e.metricRules, rules: rules, res: res, mh: resHash ^ metricstate.HashString(m.Name()), now: now}
	switch m.Type() {
	case pmetric.MetricTypeGauge:
		p.numbers(m.Gauge().DataPoints(), kindGauge, true, false)
	case pmetric.MetricTypeSum:
		s := m.Sum()
		p.numbers(s.DataPoints(), kindSum, s.AggregationTemporality() == pmetric.AggregationTemporalityCumulative, s.IsMonotonic())
	case pmetric.MetricTypeHistogram:
		h := m.Histogram()
		cumulative := h.AggregationTemporality() == pmetric.AggregationTemporalityCumulative
		for i := 0; i < h.DataPoints().Len(); i++ {
			if dp := h.DataPoints().At(i); !dp.Flags().NoRecordedValue() {
				p.observe(e.series.histogramObs(p.key(dp.Attributes()), dp, cumulative, now), dp.Attributes())
			}
		}
	case pmetric.MetricTypeExponentialHistogram:
		h := m.ExponentialHistogram()
		cumulative := h.AggregationTemporality() == pmetric.AggregationTemporalityCumulative
		for i := 0; i < h.DataPoints().Len(); i++ {
			if dp := h.DataPoints().At(i); !dp.Flags().NoRecordedValue() {
				p.observe(e.series.expHistogramObs(p.key(dp.Attributes()), dp, cumulative, now), dp.Attributes())
			}
		}
	case pmetric.MetricTypeSummary:
		for i := 0; i < m.Summary().DataPoints().Len(); i++ {
			if dp := m.Summary().DataPoints().At(i); !dp.Flags().NoRecordedValue() {
				p.observe(e.series.summaryObs(p.key(dp.Attributes()), dp, now), dp.Attributes())
			}
		}
	}
}

// pointIngest is what every data point of one metric is observed with.
type pointIngest struct {
	s     *seriesTracker
	all   []*metricRule // the engine's metric rules
	rules []int32       // the positions in all of the rules that read the metric
	res   pcommon.Map
	mh    uint64 // metric name and resource hash
	now   time.Time
}

func (p *pointIngest) key(attrs pcommon.Map) uint64 { return seriesKey(p.mh, attrs) }

// observe adds o to the window of its group in every rule.
func (p *pointIngest) observe(o obs, attrs pcommon.Map) {
	for _, i := range p.rules {
		p.all[i].observe(&o, attrs, p.res, p.now)
	}
}

// numbers observes gauge and sum points that carry a value (staleness
// markers and NaN carry none).
func (p *pointIngest) numbers(dps pmetric.NumberDataPointSlice, kind obsKind, cumulative, monotonic bool) {
	for i := 0; i < dps.Len(); i++ {
		dp := dps.At(i)
		if dp.Flags().NoRecordedValue() {
			continue
		}
		if o, ok := p.s.numberObs(p.key(dp.Attributes()), dp, kind, cumulative, monotonic, p.now); ok {
			p.observe(o, dp.Attributes())
		}
	}
}
