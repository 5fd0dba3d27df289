package samplingprocessor // import "github.com/anvil/anvilcol/processor/samplingprocessor"

import (
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// tokenBucket is a rule's max_per_second cap: golang.org/x/time/rate's token
// bucket, refilling at perSecond tokens a second up to a burst of
// max(1, perSecond); each item the rate keeps takes one. Time comes from the
// caller (the processor's clock, read once per batch), so tests drive it
// without sleeping.
type tokenBucket struct {
	mu sync.Mutex // TokensAt and AllowN as one step
	l  *rate.Limiter
}

func newTokenBucket(perSecond float64) *tokenBucket {
	return &tokenBucket{l: rate.NewLimiter(rate.Limit(perSecond), int(math.Max(1, perSecond)))}
}

// take takes n tokens if available, else as many whole tokens as there are,
// and returns how many it took. Batches take their tokens in one call.
func (b *tokenBucket) take(now time.Time, n int) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	got := min(n, int(math.Floor(b.l.TokensAt(now))))
	if got <= 0 || !b.l.AllowN(now, got) {
		return 0
	}
	return got
}
