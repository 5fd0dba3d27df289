package samplingprocessor // import "github.com/anvil/anvilcol/processor/samplingprocessor"

import (
	"math"
	"sync"
	"time"
)

// tokenBucket is a rule's max_per_second cap: it refills at perSecond tokens
// a second up to a burst of max(1, perSecond) tokens, and each item the rate
// keeps takes one. Time comes from the caller (the processor's clock, read
// once per batch), so tests drive it without sleeping.
type tokenBucket struct {
	mu        sync.Mutex
	perSecond float64
	burst     float64
	tokens    float64
	last      time.Time
}

func newTokenBucket(perSecond float64) *tokenBucket {
	burst := math.Max(1, perSecond)
	return &tokenBucket{perSecond: perSecond, burst: burst, tokens: burst}
}

// refill adds the tokens earned since the last call. A clock that goes
// backwards earns nothing.
func (b *tokenBucket) refill(now time.Time) {
	if b.last.IsZero() {
		b.last = now
		return
	}
	if d := now.Sub(b.last); d > 0 {
		b.tokens = math.Min(b.burst, b.tokens+d.Seconds()*b.perSecond)
		b.last = now
	}
}

// take takes n tokens if available, else as many whole tokens as there are,
// and returns how many it took. Batches take their tokens in one call.
func (b *tokenBucket) take(now time.Time, n int) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refill(now)
	got := int(math.Min(float64(n), math.Floor(b.tokens)))
	if got < 0 {
		got = 0
	}
	b.tokens -= float64(got)
	return got
}
