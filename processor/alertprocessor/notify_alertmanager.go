package alertprocessor // import "github.com/anvil/anvilcol/processor/alertprocessor"

import (
	"context"
	"net/http"
	"strings"
	"time"
)

// alertmanagerPath is Alertmanager's v2 API for posting alerts.
const alertmanagerPath = "/api/v2/alerts"

type alertmanagerSender struct {
	client *http.Client
	url    string
	resend time.Duration
}

func newAlertmanagerSender(client *http.Client, endpoint string, resend time.Duration) *alertmanagerSender {
	return &alertmanagerSender{client: client, url: strings.TrimRight(endpoint, "/") + alertmanagerPath, resend: resend}
}

// amAlert is one alert of Alertmanager's v2 API (postableAlert).
type amAlert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	StartsAt    string            `json:"startsAt"`
	EndsAt      string            `json:"endsAt,omitempty"`
}

// amLabelName makes a group_by key a valid Prometheus label name.
func amLabelName(k string) string {
	var b strings.Builder
	for i, r := range k {
		ok := r == '_' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (i > 0 && r >= '0' && r <= '9')
		if ok {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

// alertmanagerPayload builds the alert like Prometheus does: a firing alert's
// endsAt is 4 resend intervals ahead (it is re-sent every resend_interval, so
// Alertmanager resolves it on its own only if anvilcol stops); a resolved
// alert's endsAt is the resolution time.
func alertmanagerPayload(n Notification, resend time.Duration) []amAlert {
	labels := map[string]string{"alertname": n.Rule, "severity": n.Severity}
	for k, v := range n.Labels {
		if v == "" {
			continue
		}
		name := amLabelName(k)
		if name == "alertname" || name == "severity" {
			name = "group_" + name
		}
		labels[name] = v
	}
	a := amAlert{
		Labels: labels,
		Annotations: map[string]string{
			"summary":   n.Summary,
			"value":     formatValue(n.Value),
			"threshold": n.Op + " " + formatValue(n.Threshold),
		},
		StartsAt: rfc3339(n.StartsAt),
	}
	if n.Status == StatusResolved {
		a.EndsAt = rfc3339(n.EndsAt)
	} else if resend > 0 {
		a.EndsAt = rfc3339(n.At.Add(4 * resend))
	}
	return []amAlert{a}
}

func (s *alertmanagerSender) send(ctx context.Context, n Notification) error {
	return postJSON(ctx, s.client, s.url, alertmanagerPayload(n, s.resend))
}
