package samplingprocessor // import "github.com/anvil/anvilcol/processor/samplingprocessor"

import (
	"context"

	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/processor/processorhelper"

	"github.com/anvil/anvilcol/internal/event"
)

type logsSampler struct{ *sampler }

// processLogs decides every log record in one walk, removing the dropped ones
// (and scopes and resources left empty) in place.
func (s logsSampler) processLogs(ctx context.Context, ld plog.Logs) (plog.Logs, error) {
	b := s.begin()
	ld.ResourceLogs().RemoveIf(func(rl plog.ResourceLogs) bool {
		rl.ScopeLogs().RemoveIf(func(sl plog.ScopeLogs) bool {
			sl.LogRecords().RemoveIf(func(lr plog.LogRecord) bool {
				return !s.sampleLog(b, lr)
			})
			return sl.LogRecords().Len() == 0
		})
		return rl.ScopeLogs().Len() == 0
	})
	s.end(ctx, b)
	if ld.ResourceLogs().Len() == 0 {
		return ld, processorhelper.ErrSkipProcessingData
	}
	return ld, nil
}

// sampleLog decides one log record and marks it if kept: records kept at a
// rate below 1 get sampling.threshold and sampling.adjusted_count; records a
// cap let through get sampling.capped.
func (s logsSampler) sampleLog(b *batch, lr plog.LogRecord) bool {
	attrs := lr.Attributes()
	ri, r, done, kept := s.pick(b, event.LogKey(lr), attrs)
	if done {
		return kept
	}

	rnd, explicit := parseRandomness(attrs)
	if !explicit {
		rnd = randomnessOf(lr.TraceID(), attrs, s.hashAttr)
	}
	existing, has := parseThreshold(attrs)
	if has && !existing.ShouldSample(rnd) {
		// The arriving threshold contradicts the randomness: the record
		// should not have been sampled before. As the OpenTelemetry spec
		// recommends, forget the threshold instead of trusting it.
		attrs.Remove(AttrThreshold)
		has = false
	}
	v, eff := s.decide(b, r, rnd, existing, has)
	if !b.count(ri, v) {
		return false
	}
	if !r.keepsAll() {
		if eff == r.threshold {
			attrs.PutStr(AttrThreshold, r.tvalue)
			attrs.PutDouble(AttrAdjustedCount, r.adjusted)
		} else {
			// An earlier, stricter threshold stands; so does its weight.
			attrs.PutDouble(AttrAdjustedCount, eff.AdjustedCount())
		}
	}
	if r.limiter != nil {
		attrs.PutBool(AttrCapped, true)
	}
	return true
}
