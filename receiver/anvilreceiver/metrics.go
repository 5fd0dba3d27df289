package anvilreceiver // import "github.com/anvil/anvilcol/receiver/anvilreceiver"

import (
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/anvil/anvilcol/internal/metricstate"
	"github.com/anvil/anvilcol/internal/timeunit"
)

// attrOverflow marks the series that collects measurements beyond
// max_series_per_metric.
const attrOverflow = "otel.metric.overflow"

// Series keys encode the tag values: per tag a presence byte, the value's
// string form and a separator byte that valid UTF-8 never contains.
const (
	keyAbsent  = 0x00
	keyPresent = 0x01
	keySep     = 0xff
)

// metricDef is a validated metric definition, ready to aggregate.
type metricDef struct {
	index       int
	name        string
	typ         MetricType
	event       string
	measurement string
	unit        string
	description string
	tags        []string
	// tagSlots holds, per tag, the aggregator's slot of (event, tag): where
	// the events lacking that tag are counted.
	tagSlots []int32
	// convert is set when the metric's unit is a time unit: measurements are
	// converted from the event's time unit into toUnit.
	convert   bool
	toUnit    timeunit.Unit
	buckets   []float64
	expo      bool
	maxSize   int
	quantiles []float64
	monotonic bool
}

func newMetricDefs(cfgs []MetricConfig) []*metricDef {
	defs := make([]*metricDef, len(cfgs))
	for i, c := range cfgs {
		d := &metricDef{
			index: i, name: c.Name, typ: c.Type, event: c.event(), measurement: c.measurement(),
			unit: c.Unit, description: c.Description, tags: c.Tags, monotonic: c.Monotonic,
		}
		if u, err := timeunit.Parse(c.Unit); err == nil && u != timeunit.Native {
			d.convert, d.toUnit = true, u
		}
		switch c.Type {
		case TypeDistribution:
			if c.Histogram == HistogramExponential {
				d.expo = true
				d.maxSize = c.MaxSize
				if d.maxSize == 0 {
					d.maxSize = defaultExponentialMaxSize
				}
			} else {
				d.buckets = c.Buckets
				if len(d.buckets) == 0 {
					d.buckets = defaultBuckets
				}
			}
		case TypeSummary:
			d.quantiles = c.Quantiles
			if len(d.quantiles) == 0 {
				d.quantiles = defaultQuantiles
			}
		}
		defs[i] = d
	}
	return defs
}

// update is one staged measurement for one metric: the series key lives in
// the stage's arena at [off, end).
type update struct {
	def      *metricDef
	off, end int
	value    float64
}

// stage holds the metric updates of one request; they are applied only once
// the request's logs and spans were accepted, so a retried request is not
// counted twice. The same holds for its count of events lacking a tag.
type stage struct {
	updates []update
	arena   []byte

	// missing counts, by (event, tag) slot of the aggregator, the staged
	// events that lack a tag of a definition they feed; touched lists the
	// slots counted (in order of first sight). marks[slot] == seq when the
	// event being staged (the seq-th) was counted there already, so an event
	// counts once per tag however many of its definitions are tagged by it.
	missing []int64
	touched []int32
	marks   []uint64
	seq     uint64
}

func (s *stage) reset() {
	s.updates = s.updates[:0]
	s.arena = s.arena[:0]
	for _, slot := range s.touched {
		s.missing[slot] = 0
	}
	s.touched = s.touched[:0]
}

// countMissing counts the event being staged as lacking the tag of slot (one
// of slots).
func (s *stage) countMissing(slot int32, slots int) {
	if len(s.marks) < slots {
		s.marks = append(s.marks, make([]uint64, slots-len(s.marks))...)
		s.missing = append(s.missing, make([]int64, slots-len(s.missing))...)
	}
	if s.marks[slot] == s.seq {
		return
	}
	s.marks[slot] = s.seq
	if s.missing[slot] == 0 {
		s.touched = append(s.touched, slot)
	}
	s.missing[slot]++
}

// missingKey is an (event, tag) pair of the definitions: the unit in which
// events lacking a tag are counted.
type missingKey struct {
	event, attribute string
}

// aggregator aggregates metric updates into series and flushes them.
type aggregator struct {
	defs       []*metricDef
	byEvent    map[string][]*metricDef
	native     timeunit.Unit
	delta      bool
	ttl        time.Duration
	maxSer     int
	maxSampl   int
	onOverflow func(metric string)
	// missing lists the (event, tag) pairs of the definitions, by slot
	// (metricDef.tagSlots).
	missing []missingKey

	mu        sync.Mutex
	resources map[uint64]*resourceState // by metricstate.HashAttributes of the resource; 0: the configured one
	series    []int                     // live series per metric definition (over all resources)
	lastFlush time.Time
	scratch   metricstate.Histogram // flush: an exponential point being written
}

type resourceState struct {
	resource pcommon.Map
	metrics  []*metricState // by metricDef.index, nil until used
}

type metricState struct {
	series   map[string]*series
	overflow *series
}

type series struct {
	attrs    pcommon.Map
	start    time.Time
	lastSeen time.Time
	updated  bool

	count   uint64
	sum     float64
	min     float64
	max     float64
	last    float64
	hist    *metricstate.Histogram // explicit-bucket distributions
	expo    *metricstate.Recorder  // exponential distributions
	samples []float64
	seen    uint64 // samples offered this interval (reservoir sampling)
	// quantiles of a summary: those of the latest interval that had samples
	// (cumulative temporality; reported again until the next such interval).
	quantiles []float64
}

func newAggregator(defs []*metricDef, native timeunit.Unit, delta bool, ttl time.Duration, maxSeries int, now time.Time) *aggregator {
	a := &aggregator{
		defs: defs, byEvent: map[string][]*metricDef{}, native: native, delta: delta, ttl: ttl,
		maxSer: maxSeries, maxSampl: defaultSummaryMaxSamples, onOverflow: func(string) {},
		resources: map[uint64]*resourceState{}, series: make([]int, len(defs)), lastFlush: now,
	}
	slots := map[missingKey]int32{}
	for _, d := range defs {
		a.byEvent[d.event] = append(a.byEvent[d.event], d)
		d.tagSlots = make([]int32, len(d.tags))
		for j, tag := range d.tags {
			k := missingKey{event: d.event, attribute: tag}
			slot, ok := slots[k]
			if !ok {
				slot = int32(len(a.missing))
				slots[k] = slot
				a.missing = append(a.missing, k)
			}
			d.tagSlots[j] = slot
		}
	}
	return a
}

// stageEvent appends the updates of one event to st, and counts the tags of
// those updates that the event lacks.
func (a *aggregator) stageEvent(st *stage, ev *decodedEvent) {
	defs := a.byEvent[ev.name]
	if len(defs) == 0 {
		return
	}
	st.seq++
	for _, d := range defs {
		v := 1.0
		if d.typ != TypeCounter {
			var ok bool
			if v, ok = ev.value(d.measurement); !ok {
				continue // Telemetry.Metrics skips events without the measurement
			}
			if d.convert {
				from := ev.unit
				if from == timeunit.Native {
					from = a.native
				}
				v = timeunit.Convert(v, from, d.toUnit)
			}
		}
		off := len(st.arena)
		for j, tag := range d.tags {
			if tv, ok := ev.attrs.Get(tag); ok {
				st.arena = append(st.arena, keyPresent)
				if tv.Type() == pcommon.ValueTypeStr {
					st.arena = append(st.arena, tv.Str()...)
				} else {
					st.arena = append(st.arena, tv.AsString()...)
				}
			} else {
				st.arena = append(st.arena, keyAbsent)
				st.countMissing(d.tagSlots[j], len(a.missing))
			}
			st.arena = append(st.arena, keySep)
		}
		st.updates = append(st.updates, update{def: d, off: off, end: len(st.arena), value: v})
	}
}

// apply aggregates the staged updates of one request under resource.
func (a *aggregator) apply(st *stage, resKey uint64, resource func() pcommon.Map, now time.Time) {
	if len(st.updates) == 0 {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	rs := a.resources[resKey]
	if rs == nil {
		rs = &resourceState{resource: resource(), metrics: make([]*metricState, len(a.defs))}
		a.resources[resKey] = rs
	}
	for i := range st.updates {
		u := &st.updates[i]
		ms := rs.metrics[u.def.index]
		if ms == nil {
			ms = &metricState{series: map[string]*series{}}
			rs.metrics[u.def.index] = ms
		}
		key := st.arena[u.off:u.end]
		s := ms.series[string(key)]
		if s == nil {
			if a.series[u.def.index] >= a.maxSer {
				if ms.overflow == nil {
					ms.overflow = a.newSeries(u.def, now)
					ms.overflow.attrs.PutBool(attrOverflow, true)
				}
				s = ms.overflow
				a.onOverflow(u.def.name)
			} else {
				s = a.newSeries(u.def, now)
				decodeKey(u.def.tags, key, s.attrs)
				ms.series[string(key)] = s
				a.series[u.def.index]++
			}
		}
		a.record(u.def, s, u.value, now)
	}
}

func (a *aggregator) newSeries(d *metricDef, now time.Time) *series {
	s := &series{attrs: pcommon.NewMap(), start: now}
	if d.typ == TypeDistribution {
		if d.expo {
			s.expo = metricstate.NewRecorder(d.maxSize)
		} else {
			s.hist = metricstate.NewExplicit(d.buckets)
		}
	}
	return s
}

// decodeKey turns a series key back into attributes.
func decodeKey(tags []string, key []byte, attrs pcommon.Map) {
	attrs.EnsureCapacity(len(tags))
	for _, tag := range tags {
		present := key[0] == keyPresent
		end := 1
		for key[end] != keySep {
			end++
		}
		if present {
			attrs.PutStr(tag, string(key[1:end]))
		}
		key = key[end+1:]
	}
}

func (a *aggregator) record(d *metricDef, s *series, v float64, now time.Time) {
	s.lastSeen = now
	if !s.updated {
		s.updated = true
		if s.count == 0 {
			s.min, s.max = v, v
		}
	}
	s.count++
	s.sum += v
	s.last = v
	s.min = math.Min(s.min, v)
	s.max = math.Max(s.max, v)
	switch d.typ {
	case TypeDistribution:
		if d.expo {
			s.expo.Record(v)
		} else {
			s.hist.RecordExplicit(v)
		}
	case TypeSummary:
		s.seen++
		if len(s.samples) < a.maxSampl {
			s.samples = append(s.samples, v)
		} else if j := rand.Uint64N(s.seen); j < uint64(a.maxSampl) {
			s.samples[j] = v
		}
	}
}

// seriesCount returns the number of live series (own telemetry).
func (a *aggregator) seriesCount() int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	var n int64
	for _, c := range a.series {
		n += int64(c)
	}
	return n
}

// flush returns the metrics of the interval ending now (empty when there is
// nothing to report), resets delta state and forgets series unseen for ttl.
func (a *aggregator) flush(now time.Time, scope func(pmetric.ScopeMetrics)) pmetric.Metrics {
	a.mu.Lock()
	defer a.mu.Unlock()
	md := pmetric.NewMetrics()
	intervalStart := a.lastFlush
	a.lastFlush = now
	ts := pcommon.NewTimestampFromTime(now)
	keys := make([]uint64, 0, len(a.resources))
	for k := range a.resources {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, rk := range keys {
		rs := a.resources[rk]
		var sm pmetric.ScopeMetrics
		live := 0
		for _, d := range a.defs {
			ms := rs.metrics[d.index]
			if ms == nil {
				continue
			}
			var m pmetric.Metric
			emit := func(s *series) {
				if a.delta && !s.updated {
					return
				}
				if m == (pmetric.Metric{}) {
					if sm == (pmetric.ScopeMetrics{}) {
						rm := md.ResourceMetrics().AppendEmpty()
						rs.resource.CopyTo(rm.Resource().Attributes())
						sm = rm.ScopeMetrics().AppendEmpty()
						scope(sm)
					}
					m = a.newMetric(sm, d)
				}
				start := s.start
				if a.delta {
					start = intervalStart
				}
				a.point(d, m, s, pcommon.NewTimestampFromTime(start), ts)
				a.resetInterval(d, s, now)
			}
			for _, k := range slices.Sorted(maps.Keys(ms.series)) {
				s := ms.series[k]
				if a.ttl > 0 && now.Sub(s.lastSeen) > a.ttl {
					delete(ms.series, k)
					a.series[d.index]--
					continue
				}
				emit(s)
			}
			if ms.overflow != nil {
				if a.ttl > 0 && now.Sub(ms.overflow.lastSeen) > a.ttl {
					ms.overflow = nil
				} else {
					emit(ms.overflow)
				}
			}
			if len(ms.series) == 0 && ms.overflow == nil {
				rs.metrics[d.index] = nil
			} else {
				live++
			}
		}
		if live == 0 {
			delete(a.resources, rk)
		}
	}
	return md
}

func (a *aggregator) newMetric(sm pmetric.ScopeMetrics, d *metricDef) pmetric.Metric {
	m := sm.Metrics().AppendEmpty()
	m.SetName(d.name)
	m.SetUnit(d.unit)
	m.SetDescription(d.description)
	temp := pmetric.AggregationTemporalityCumulative
	if a.delta {
		temp = pmetric.AggregationTemporalityDelta
	}
	switch d.typ {
	case TypeCounter, TypeSum:
		sum := m.SetEmptySum()
		sum.SetIsMonotonic(d.typ == TypeCounter || d.monotonic)
		sum.SetAggregationTemporality(temp)
	case TypeLastValue:
		m.SetEmptyGauge()
	case TypeSummary:
		m.SetEmptySummary()
	case TypeDistribution:
		if d.expo {
			m.SetEmptyExponentialHistogram().SetAggregationTemporality(temp)
		} else {
			m.SetEmptyHistogram().SetAggregationTemporality(temp)
		}
	}
	return m
}

func (a *aggregator) point(d *metricDef, m pmetric.Metric, s *series, start, ts pcommon.Timestamp) {
	switch d.typ {
	case TypeCounter:
		newPoint(m.Sum().DataPoints(), s, start, ts).SetIntValue(int64(s.count))
	case TypeSum:
		newPoint(m.Sum().DataPoints(), s, start, ts).SetDoubleValue(s.sum)
	case TypeLastValue:
		newPoint(m.Gauge().DataPoints(), s, 0, ts).SetDoubleValue(s.last) // a gauge has no start
	case TypeSummary:
		dp := newPoint(m.Summary().DataPoints(), s, start, ts)
		dp.SetCount(s.count)
		dp.SetSum(s.sum)
		if len(s.samples) > 0 {
			// The quantiles of the latest interval that had samples, kept
			// until the next one: a scraper sees them whenever it scrapes,
			// not only in the flush interval in which the samples came.
			slices.Sort(s.samples)
			s.quantiles = s.quantiles[:0]
			for _, q := range d.quantiles {
				s.quantiles = append(s.quantiles, quantile(s.samples, q))
			}
		}
		for i, v := range s.quantiles {
			qv := dp.QuantileValues().AppendEmpty()
			qv.SetQuantile(d.quantiles[i])
			qv.SetValue(v)
		}
	case TypeDistribution:
		if d.expo {
			s.expo.WriteTo(newPoint(m.ExponentialHistogram().DataPoints(), s, start, ts), &a.scratch)
		} else {
			s.hist.WriteExplicit(newPoint(m.Histogram().DataPoints(), s, start, ts))
		}
	}
}

// timedPoint is a data point: attributes and times.
type timedPoint interface {
	Attributes() pcommon.Map
	SetStartTimestamp(pcommon.Timestamp)
	SetTimestamp(pcommon.Timestamp)
}

// newPoint appends a point of series s to dps.
func newPoint[P timedPoint, S interface{ AppendEmpty() P }](dps S, s *series, start, ts pcommon.Timestamp) P {
	dp := dps.AppendEmpty()
	s.attrs.CopyTo(dp.Attributes())
	dp.SetStartTimestamp(start)
	dp.SetTimestamp(ts)
	return dp
}

// resetInterval ends a flush interval for a series: summary samples always
// reset; with delta temporality everything does.
func (a *aggregator) resetInterval(d *metricDef, s *series, now time.Time) {
	s.updated = false
	s.samples = s.samples[:0]
	s.seen = 0
	if !a.delta {
		return
	}
	s.start = now
	s.quantiles = s.quantiles[:0]
	s.count, s.sum = 0, 0
	s.min, s.max = 0, 0
	if s.hist != nil {
		s.hist.Reset()
	}
	if s.expo != nil {
		s.expo.Reset()
	}
}

// quantile returns the nearest-rank quantile q of sorted values.
func quantile(sorted []float64, q float64) float64 {
	if q <= 0 {
		return sorted[0]
	}
	rank := int(math.Ceil(q*float64(len(sorted)))) - 1
	rank = max(0, min(rank, len(sorted)-1))
	return sorted[rank]
}
