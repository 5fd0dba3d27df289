package notify // import "github.com/anvil/anvilcol/processor/alertprocessor/internal/notify"

import (
	"context"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// pacers hold one pacer per destination key (a Slack webhook URL), shared
// by every notifier of the processor that posts there.
type pacers struct {
	clk Clock
	mu  sync.Mutex
	m   map[string]*pacer
}

func newPacers(clk Clock) *pacers {
	return &pacers{clk: clk, m: map[string]*pacer{}}
}

// get returns key's pacer, allowing one message per gap; the first caller's
// gap wins.
func (p *pacers) get(key string, gap time.Duration) *pacer {
	p.mu.Lock()
	defer p.mu.Unlock()
	pc, ok := p.m[key]
	if !ok {
		pc = &pacer{lim: rate.NewLimiter(rate.Every(gap), 1), clk: p.clk}
		p.m[key] = pc
	}
	return pc
}

// pacer spaces the messages to one destination: a token bucket of one
// token refilled every gap (golang.org/x/time/rate, on the processor's
// clock), and a hold the destination asked for (429 Retry-After).
type pacer struct {
	lim *rate.Limiter
	clk Clock

	mu   sync.Mutex
	hold time.Time // no message before this
}

// wait blocks until the caller may send (or ctx ends).
func (p *pacer) wait(ctx context.Context) error {
	p.mu.Lock()
	hold := p.hold
	p.mu.Unlock()
	if d := hold.Sub(p.clk.Now()); d > 0 {
		if err := p.sleep(ctx, d); err != nil {
			return err
		}
	}
	now := p.clk.Now()
	r := p.lim.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		if err := p.sleep(ctx, d); err != nil {
			r.CancelAt(p.clk.Now())
			return err
		}
	}
	return nil
}

func (p *pacer) sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-p.clk.After(d):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// delay holds every message for d from now.
func (p *pacer) delay(d time.Duration) {
	at := p.clk.Now().Add(d)
	p.mu.Lock()
	if at.After(p.hold) {
		p.hold = at
	}
	p.mu.Unlock()
}
