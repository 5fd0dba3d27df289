package samplingprocessor // import "github.com/anvil/anvilcol/processor/samplingprocessor"

import (
	"context"
	"strings"

	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/sampling"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor/processorhelper"

	"github.com/anvil/anvilcol/internal/event"
)

type tracesSampler struct{ *sampler }

// processTraces decides every span in one walk, removing the dropped ones
// (and scopes and resources left empty) in place.
func (s tracesSampler) processTraces(ctx context.Context, td ptrace.Traces) (ptrace.Traces, error) {
	b := s.begin()
	td.ResourceSpans().RemoveIf(func(rs ptrace.ResourceSpans) bool {
		rs.ScopeSpans().RemoveIf(func(ss ptrace.ScopeSpans) bool {
			ss.Spans().RemoveIf(func(sp ptrace.Span) bool {
				return !s.sampleSpan(b, sp)
			})
			return ss.Spans().Len() == 0
		})
		return rs.ScopeSpans().Len() == 0
	})
	s.end(ctx, b)
	if td.ResourceSpans().Len() == 0 {
		return td, processorhelper.ErrSkipProcessingData
	}
	return td, nil
}

// sampleSpan decides one span and marks it if kept: spans kept at a rate below
// 1 carry the threshold in the W3C tracestate's OpenTelemetry entry
// (`ot=th:<hex>`), keeping an existing stricter one; spans a cap let through
// get the sampling.capped attribute.
func (s tracesSampler) sampleSpan(b *batch, sp ptrace.Span) bool {
	attrs := sp.Attributes()
	ri, r, done, kept := s.pick(b, event.SpanKey(sp), attrs)
	if done {
		return kept
	}

	raw := sp.TraceState().AsRaw()
	if raw == "" {
		// The common case: no tracestate to merge with.
		rnd := randomnessOf(sp.TraceID(), attrs, s.hashAttr)
		v, _ := s.decide(b, r, rnd, sampling.Threshold{}, false)
		if !b.count(ri, v) {
			return false
		}
		if !r.keepsAll() {
			sp.TraceState().FromRaw(r.otTraceState)
		}
		if r.limiter != nil {
			attrs.PutBool(AttrCapped, true)
		}
		return true
	}

	w3c, err := sampling.NewW3CTraceState(raw)
	if err != nil {
		// A tracestate we cannot parse is left as it is (it belongs to
		// other vendors too); the span is decided on its trace id.
		rnd := randomnessOf(sp.TraceID(), attrs, s.hashAttr)
		v, _ := s.decide(b, r, rnd, sampling.Threshold{}, false)
		if b.count(ri, v) && r.limiter != nil {
			attrs.PutBool(AttrCapped, true)
		}
		return v == keep
	}
	ot := w3c.OTelValue()
	rnd, explicit := ot.RValueRandomness()
	if !explicit {
		rnd = randomnessOf(sp.TraceID(), attrs, s.hashAttr)
	}
	existing, has := ot.TValueThreshold()
	dirty := false
	if has && !existing.ShouldSample(rnd) {
		// Inconsistent arriving threshold: forget it (OpenTelemetry spec).
		ot.ClearTValue()
		has, dirty = false, true
	}
	v, eff := s.decide(b, r, rnd, existing, has)
	if !b.count(ri, v) {
		return false
	}
	if !r.keepsAll() && eff == r.threshold && (!has || existing != eff) {
		// Ours is the stricter threshold; it cannot fail to update.
		_ = ot.UpdateTValueWithSampling(r.threshold)
		dirty = true
	}
	if dirty {
		var sb strings.Builder
		if err := w3c.Serialize(&sb); err == nil {
			sp.TraceState().FromRaw(sb.String())
		}
	}
	if r.limiter != nil {
		attrs.PutBool(AttrCapped, true)
	}
	return true
}
