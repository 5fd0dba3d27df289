package alertprocessor // import "github.com/anvil/anvilcol/processor/alertprocessor"

import (
	"crypto/sha256"
	"encoding/hex"
	"maps"
	"slices"
	"strings"
	"time"
)

// Status of a notification.
const (
	StatusFiring   = "firing"
	StatusResolved = "resolved"
)

// Notification is one alert event handed to the notifiers.
type Notification struct {
	Rule      string
	Status    string // firing or resolved
	Repeat    bool   // a re-notification of a still-firing alert (repeat_interval)
	Severity  string
	Summary   string
	Value     float64
	Threshold float64
	Op        string
	Stat      string
	Labels    map[string]string // the group_by labels of this alert
	DedupKey  string            // stable per (rule, group), across restarts
	StartsAt  time.Time
	EndsAt    time.Time // zero while firing
	At        time.Time

	sev     severity
	refresh bool // an Alertmanager keep-alive only
}

// templateData is what a summary template sees.
type templateData struct {
	Rule      string
	Value     float64
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
		Severity:  r.sev.String(),
		Value:     g.value,
		Threshold: r.threshold,
		Op:        r.op.String(),
		Stat:      r.statName(),
		Labels:    maps.Clone(g.labels),
		DedupKey:  g.dedup,
		StartsAt:  g.activeAt,
		At:        now,
		sev:       r.sev,
	}
	var b strings.Builder
	err := r.tmpl.Execute(&b, templateData{Rule: n.Rule, Value: n.Value, Threshold: n.Threshold, Op: n.Op,
		Severity: n.Severity, Status: status, Labels: n.Labels})
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
