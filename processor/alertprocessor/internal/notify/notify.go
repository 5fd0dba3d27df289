// Package notify delivers the alert processor's notifications: one worker
// per destination (a bounded queue drained by one goroutine, with retries
// and exponential backoff), HTTP through internal/jsonpost, per-destination
// pacing on golang.org/x/time/rate, and the payload of each notifier type.
// Adding a notifier type is one file (its config sub-struct, payload and
// sender) and one row of notifierTypes.
package notify // import "github.com/anvil/anvilcol/processor/alertprocessor/internal/notify"

import (
	"context"
	"fmt"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/otel/metric"

	"github.com/anvil/anvilcol/internal/clock"
	"github.com/anvil/anvilcol/internal/ratelog"
)

// Type names of the notifiers.
const (
	TypeSlack        = "slack"
	TypePagerDuty    = "pagerduty"
	TypeAlertmanager = "alertmanager"
	TypeWebhook      = "webhook"
	TypeLog          = "log"
)

// notifierType is one `type:` value: its config sub-struct, defaults and
// checks, and the constructor of its destinations.
type notifierType struct {
	name string
	// sub returns the type's sub-struct of c.
	sub func(c *Config) any
	// defaults sets the type's own defaults (nil: none).
	defaults func(c *Config)
	// check returns the type's configuration errors; key names a key of the notifier.
	check func(c *Config, key func(string) string) []error
	// build makes the type's destinations.
	build func(c *Config, b *builder) ([]destination, error)
}

// notifierTypes is the table from `type:` to constructor, in the order the
// documentation lists them.
var notifierTypes = []notifierType{
	{name: TypeSlack, sub: func(c *Config) any { return c.Slack }, check: checkSlack, build: buildSlack},
	{name: TypePagerDuty, sub: func(c *Config) any { return c.PagerDuty }, check: checkPagerDuty, build: buildPagerDuty},
	{name: TypeAlertmanager, sub: func(c *Config) any { return c.Alertmanager }, defaults: alertmanagerDefaults, check: checkAlertmanager, build: buildAlertmanager},
	{name: TypeWebhook, sub: func(c *Config) any { return c.Webhook }, check: checkWebhook, build: buildWebhook},
	{name: TypeLog, sub: func(c *Config) any { return c.Log }, build: buildLog},
}

func lookup(typ string) (notifierType, bool) {
	for _, t := range notifierTypes {
		if t.name == typ {
			return t, true
		}
	}
	return notifierType{}, false
}

func typeNames() []string {
	names := make([]string, len(notifierTypes))
	for i, t := range notifierTypes {
		names[i] = t.name
	}
	return names
}

// Clock is the part of the processor's time source (an internal/clock
// Clock: clock.Real, or clocktest.Fake in tests) the notifiers use: Now for
// retry deadlines and pacing, After for their waits, so a fake clock drives
// both in tests.
type Clock interface {
	Now() time.Time
	// After is time.After on this clock.
	After(d time.Duration) <-chan time.Time
}

var _ Clock = clock.Clock(nil)

// Counters are the processor's own telemetry for notifications; each is
// recorded with the attribute notifier=<type>.
type Counters struct {
	Sent    metric.Int64Counter // otelcol_alert_notifications_sent
	Failed  metric.Int64Counter // otelcol_alert_notifications_failed
	Dropped metric.Int64Counter // otelcol_alert_notification_queue_dropped
}

// Settings are what every notifier of a processor shares.
type Settings struct {
	// Telemetry builds the HTTP clients; its Logger is the log notifier's.
	Telemetry component.TelemetrySettings
	Counters  Counters
	// ErrLog logs repeated failures and drops at most once per interval and kind.
	ErrLog *ratelog.Logger
	Clock  Clock
	// SendResolved passes resolutions to the notifiers other than
	// alertmanager (which always gets them).
	SendResolved bool
}

// Notifiers are the notifiers of one processor: one worker per
// destination (per Alertmanager of a cluster), and the pacing they share.
type Notifiers struct {
	workers []*worker
	pacers  *pacers
}

// New builds a worker per destination of every enabled notifier in cfgs;
// the workers wait for Start. An error names the notifier (`notifiers[i]`).
func New(ctx context.Context, host component.Host, cfgs []Config, set Settings) (*Notifiers, error) {
	ns := &Notifiers{pacers: newPacers(set.Clock)}
	b := &builder{ctx: ctx, host: host, set: set, pacers: ns.pacers}
	for i := range cfgs {
		c := &cfgs[i]
		if !c.Enabled {
			continue
		}
		t, ok := lookup(c.Type)
		if !ok {
			return nil, fmt.Errorf("`notifiers[%d]`: unknown type %q", i, c.Type)
		}
		ds, err := t.build(c, b)
		if err != nil {
			return nil, fmt.Errorf("`notifiers[%d]`: %w", i, err)
		}
		for _, d := range ds {
			ns.workers = append(ns.workers, newWorker(c, d, set))
		}
	}
	return ns, nil
}

// Len is the number of workers (destinations).
func (ns *Notifiers) Len() int {
	if ns == nil {
		return 0
	}
	return len(ns.workers)
}

// ResendInterval is the shortest resend interval of the destinations that
// take keep-alives (Notification.Refresh), 0 when none does.
func (ns *Notifiers) ResendInterval() time.Duration {
	var d time.Duration
	if ns == nil {
		return 0
	}
	for _, w := range ns.workers {
		if w.resend > 0 && (d == 0 || w.resend < d) {
			d = w.resend
		}
	}
	return d
}

// Start launches the workers.
func (ns *Notifiers) Start() {
	if ns == nil {
		return
	}
	for _, w := range ns.workers {
		w.start()
	}
}

// Offer queues n for every notifier that takes it; it never blocks.
func (ns *Notifiers) Offer(n Notification) {
	if ns == nil {
		return
	}
	for _, w := range ns.workers {
		w.offer(n)
	}
}

// Shutdown lets the workers send what is queued (no more retries) until
// ctx ends; what is left is counted as dropped.
func (ns *Notifiers) Shutdown(ctx context.Context) {
	if ns == nil {
		return
	}
	for _, w := range ns.workers {
		w.shutdown(ctx)
	}
}
