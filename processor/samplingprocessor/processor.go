package samplingprocessor // import "github.com/anvil/anvilcol/processor/samplingprocessor"

import (
	"context"
	"sync"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/sampling"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/anvil/anvilcol/internal/clock"
	"github.com/anvil/anvilcol/internal/event"
	"github.com/anvil/anvilcol/internal/eventmatch"
	"github.com/anvil/anvilcol/processor/samplingprocessor/internal/metadata"
)

// Attributes written on kept log records (and, for the cap, on spans). The
// first two follow OpenTelemetry's sampling conventions for log records (the
// threshold is the span tracestate's `th`, hex-encoded the same way).
const (
	// AttrThreshold is the sampling threshold a kept log record passed.
	AttrThreshold = "sampling.threshold"
	// AttrAdjustedCount is the number of items a kept log record stands for
	// (1/probability of keeping it).
	AttrAdjustedCount = "sampling.adjusted_count"
	// AttrRandomness is an explicit 56-bit randomness value (14 hex digits)
	// a log record may carry; it overrides the trace id.
	AttrRandomness = "sampling.randomness"
	// AttrCapped marks an item kept by a rule with max_per_second: its
	// adjusted count is a lower bound, because the cap may have dropped
	// others like it (see otelcol_sampling_items_dropped{reason="rate_limit"}).
	AttrCapped = "sampling.capped"
)

// Signals, as the `signal` attribute of the processor's own metrics.
const (
	signalLogs   = "logs"
	signalTraces = "traces"
)

// sampler is the state shared by every item a logs or traces processor
// decides: the compiled rules (with their caps), the randomness source for
// records without a trace id, the clock, and the telemetry.
type sampler struct {
	rules    *ruleSet
	hashAttr string
	capped   bool // any rule has max_per_second
	clk      clock.Clock
	tel      *telemetry
	batches  sync.Pool
}

func newSampler(set processor.Settings, cfg *Config, signal string) (*sampler, error) {
	rs, err := newRuleSet(cfg)
	if err != nil {
		return nil, err
	}
	tb, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, err
	}
	s := &sampler{
		rules:    rs,
		hashAttr: cfg.HashAttribute,
		clk:      clock.Real{},
		tel:      newTelemetry(tb, rs, signal),
	}
	for i := range rs.rules {
		s.capped = s.capped || rs.rules[i].limiter != nil
	}
	s.batches.New = func() any {
		return &batch{counts: make([]ruleCounts, len(rs.rules))}
	}
	return s, nil
}

// ruleCounts are one batch's decisions for one rule, added to the meters once
// per batch instead of once per item.
type ruleCounts struct {
	seen, kept, droppedRate, droppedLimit int64
}

// batch is the per-call state: counts, the last-name memo, and the clock read
// once for all of the batch's caps.
type batch struct {
	m      eventmatch.Memo
	counts []ruleCounts
	now    time.Time
}

func (s *sampler) begin() *batch {
	b := s.batches.Get().(*batch)
	b.m = s.rules.index.Memo()
	if s.capped {
		b.now = s.clk.Now()
	}
	return b
}

func (s *sampler) end(ctx context.Context, b *batch) {
	s.tel.record(ctx, b.counts)
	clear(b.counts)
	b.m = eventmatch.Memo{}
	s.batches.Put(b)
}

// verdict is the outcome of deciding one item.
type verdict uint8

const (
	keep verdict = iota
	dropRate
	dropLimit
)

// decide applies rule r to an item with randomness rnd that may already carry
// a threshold from an earlier sampler. Of the two thresholds the stricter
// (higher) one applies, as in OpenTelemetry's equalizing sampler, so an item
// sampled before at a lower rate passes unchanged and a trace's decision is
// the same in every agent. A kept item then takes a token from the rule's cap.
// pick finds the rule deciding an item; done is true when the rule decided
// without randomness (rate 1 or 0 and no cap: the item is left as it is),
// with the verdict in kept.
func (s *sampler) pick(b *batch, k event.Key, attrs pcommon.Map) (ri int32, r *rule, done, kept bool) {
	ri = s.rules.ruleFor(&b.m, k, attrs)
	r = &s.rules.rules[ri]
	if r.limiter == nil {
		if r.keepsAll() {
			return ri, r, true, b.count(ri, keep)
		}
		if r.threshold == sampling.NeverSampleThreshold {
			return ri, r, true, b.count(ri, dropRate)
		}
	}
	return ri, r, false, false
}

func (s *sampler) decide(b *batch, r *rule, rnd sampling.Randomness, existing sampling.Threshold, hasExisting bool) (verdict, sampling.Threshold) {
	eff := r.threshold
	if hasExisting && sampling.ThresholdGreater(existing, eff) {
		eff = existing
	}
	if !eff.ShouldSample(rnd) {
		return dropRate, eff
	}
	if r.limiter != nil && r.limiter.take(b.now, 1) == 0 {
		return dropLimit, eff
	}
	return keep, eff
}

// count records a verdict for rule ri and reports whether the item is kept.
func (b *batch) count(ri int32, v verdict) bool {
	c := &b.counts[ri]
	c.seen++
	switch v {
	case keep:
		c.kept++
		return true
	case dropRate:
		c.droppedRate++
	default:
		c.droppedLimit++
	}
	return false
}

// telemetry holds the processor's counters and, per rule, the attribute sets
// they are recorded with, built once.
type telemetry struct {
	tb                                  *metadata.TelemetryBuilder
	seenKept, droppedRate, droppedLimit []metric.AddOption
}

func newTelemetry(tb *metadata.TelemetryBuilder, rs *ruleSet, signal string) *telemetry {
	t := &telemetry{tb: tb}
	for i := range rs.rules {
		name := rs.rules[i].name
		base := []attribute.KeyValue{attribute.String("rule", name), attribute.String("signal", signal)}
		t.seenKept = append(t.seenKept, metric.WithAttributeSet(attribute.NewSet(base...)))
		t.droppedRate = append(t.droppedRate, metric.WithAttributeSet(attribute.NewSet(append(base[:2:2], attribute.String("reason", "rate"))...)))
		t.droppedLimit = append(t.droppedLimit, metric.WithAttributeSet(attribute.NewSet(append(base[:2:2], attribute.String("reason", "rate_limit"))...)))
	}
	return t
}

func (t *telemetry) record(ctx context.Context, counts []ruleCounts) {
	for i := range counts {
		c := &counts[i]
		if c.seen == 0 {
			continue
		}
		t.tb.SamplingItemsSeen.Add(ctx, c.seen, t.seenKept[i])
		if c.kept > 0 {
			t.tb.SamplingItemsKept.Add(ctx, c.kept, t.seenKept[i])
		}
		if c.droppedRate > 0 {
			t.tb.SamplingItemsDropped.Add(ctx, c.droppedRate, t.droppedRate[i])
		}
		if c.droppedLimit > 0 {
			t.tb.SamplingItemsDropped.Add(ctx, c.droppedLimit, t.droppedLimit[i])
		}
	}
}

func (s *sampler) shutdown(context.Context) error {
	s.tel.tb.Shutdown()
	return nil
}

// parseRandomness reads an explicit randomness attribute (14 hex digits).
func parseRandomness(attrs pcommon.Map) (sampling.Randomness, bool) {
	v, ok := attrs.Get(AttrRandomness)
	if !ok || v.Type() != pcommon.ValueTypeStr {
		return sampling.Randomness{}, false
	}
	rnd, err := sampling.RValueToRandomness(v.Str())
	return rnd, err == nil
}

// parseThreshold reads a log record's existing sampling.threshold.
func parseThreshold(attrs pcommon.Map) (sampling.Threshold, bool) {
	v, ok := attrs.Get(AttrThreshold)
	if !ok || v.Type() != pcommon.ValueTypeStr {
		return sampling.Threshold{}, false
	}
	th, err := sampling.TValueToThreshold(v.Str())
	return th, err == nil
}
