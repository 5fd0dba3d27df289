package alertprocessor // import "github.com/anvil/anvilcol/processor/alertprocessor"

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"go.opentelemetry.io/collector/component"

	"github.com/anvil/anvilcol/processor/alertprocessor/internal/notify"
)

// The notification and its statuses are internal/notify's.
type Notification = notify.Notification

// Status of a notification.
const (
	StatusFiring   = notify.StatusFiring
	StatusResolved = notify.StatusResolved
)

// newNotifiers builds the notifiers of the config on the engine's clock,
// counting into the processor's own telemetry; the engine starts them.
func (e *engine) newNotifiers(ctx context.Context, host component.Host) (*notify.Notifiers, error) {
	ns, err := notify.New(ctx, host, e.cfg.Notifiers, notify.Settings{
		Telemetry: e.set,
		Counters: notify.Counters{
			Sent: e.tb.AlertNotificationsSent, Failed: e.tb.AlertNotificationsFailed, Dropped: e.tb.AlertNotificationQueueDropped,
		},
		ErrLog:       e.errLog,
		Clock:        e.clk,
		SendResolved: e.cfg.SendResolved,
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	return ns, nil
}

// templateData is what a summary template sees.
type templateData struct {
	Rule      string
	Value     float64 // compared with Threshold: the statistic, or a baseline rule's ratio or difference
	Current   float64 // the window's statistic (Value without a baseline)
	Baseline  float64 // the baseline's statistic; NaN without a baseline
	Compare   string  // ratio or difference; "" without a baseline
	Threshold float64
	Op        string
	Severity  string
	Status    string
	Labels    map[string]string
}

// notification is the notification of g's alert in status at now.
func (r *rule) notification(g *group, status string, now time.Time) Notification {
	n := Notification{
		Rule:      r.name,
		Status:    status,
		Severity:  notify.Severity(r.sev), // the same order and numbers
		Value:     g.value,
		Threshold: r.threshold,
		Op:        r.op.String(),
		Stat:      r.statName(),
		Labels:    maps.Clone(g.labels),
		DedupKey:  g.dedup,
		StartsAt:  g.activeAt,
		At:        now,
	}
	td := templateData{Rule: n.Rule, Value: n.Value, Current: n.Value, Baseline: math.NaN(), Threshold: n.Threshold, Op: n.Op,
		Severity: n.Severity.String(), Status: status, Labels: n.Labels}
	if r.base != nil {
		n.Compare, n.Current, n.Baseline = r.base.compare.String(), g.current, g.baseline
		td.Compare, td.Current, td.Baseline = n.Compare, n.Current, n.Baseline
	}
	var b strings.Builder
	err := r.tmpl.Execute(&b, td)
	if err != nil {
		r.env.warn("template:"+r.name, "alert summary template failed; using the rule name")
		n.Summary = r.name
	} else {
		n.Summary = b.String()
	}
	g.summary = n.Summary // kept with the state, to resolve the alert if its rule changes
	return n
}

// dedupKey identifies an alert (rule + group labels) the same way on every
// run, so PagerDuty resolves what a previous process triggered.
func dedupKey(rule string, labels map[string]string) string {
	h := sha256.New()
	h.Write([]byte(rule))
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		h.Write([]byte{0})
		h.Write([]byte(k))
		h.Write([]byte{0})
		h.Write([]byte(labels[k]))
	}
	return "anvilcol-" + rule + "-" + hex.EncodeToString(h.Sum(nil)[:8])
}
