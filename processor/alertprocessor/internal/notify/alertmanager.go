package notify // import "github.com/anvil/anvilcol/processor/alertprocessor/internal/notify"

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// AlertmanagerConfig holds the keys of an alertmanager notifier.
type AlertmanagerConfig struct {
	// Endpoints are the base URLs of every Alertmanager of a cluster: each
	// alert goes to each of them, with its own queue and retries. `endpoint`,
	// if set, is added to the list. Required (or `endpoint`).
	Endpoints []string `mapstructure:"endpoints"`
	// ResendInterval re-sends firing alerts so they do not time out in
	// Alertmanager. Default 1m.
	ResendInterval time.Duration `mapstructure:"resend_interval"`

	_ struct{}
}

// alertmanagerPath is Alertmanager's v2 API for posting alerts.
const alertmanagerPath = "/api/v2/alerts"

func alertmanagerDefaults(c *Config) {
	c.Alertmanager.ResendInterval = time.Minute
}

func checkAlertmanager(c *Config, key func(string) string) []error {
	var errs []error
	if len(c.alertmanagerEndpoints()) == 0 {
		errs = append(errs, fmt.Errorf("%s (or %s) is required for an alertmanager notifier", key("endpoints"), key("endpoint")))
	}
	for j, u := range c.Alertmanager.Endpoints {
		if u == "" {
			errs = append(errs, fmt.Errorf("%s is empty", key(fmt.Sprintf("endpoints[%d]", j))))
		}
	}
	if c.Alertmanager.ResendInterval < 0 {
		errs = append(errs, fmt.Errorf("%s must not be negative, got %v", key("resend_interval"), c.Alertmanager.ResendInterval))
	}
	return errs
}

// alertmanagerEndpoints is `endpoint` (if set) followed by `endpoints`,
// without trailing slashes, empty entries and duplicates.
func (c *Config) alertmanagerEndpoints() []string {
	var out []string
	seen := map[string]bool{}
	for _, u := range append([]string{c.Endpoint}, c.Alertmanager.Endpoints...) {
		u = strings.TrimRight(u, "/")
		if u != "" && !seen[u] {
			seen[u] = true
			out = append(out, u)
		}
	}
	return out
}

// buildAlertmanager makes one destination per Alertmanager of the cluster:
// each gets every alert, with its own queue and retries (Prometheus' advice).
func buildAlertmanager(c *Config, b *builder) ([]destination, error) {
	var ds []destination
	for _, u := range c.alertmanagerEndpoints() {
		ep, err := b.endpoint(c, u+alertmanagerPath)
		if err != nil {
			return nil, err
		}
		s := &alertmanagerSender{ep: ep, resend: c.Alertmanager.ResendInterval}
		ds = append(ds, destination{sender: s, endpoint: u, resend: c.Alertmanager.ResendInterval, allResolved: true})
	}
	return ds, nil
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
	labels := map[string]string{"alertname": n.Rule, "severity": n.Severity.String()}
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
	if n.Compare != "" {
		a.Annotations["threshold"] = n.Compare + " " + a.Annotations["threshold"]
		a.Annotations["current"] = formatValue(n.Current)
		a.Annotations["baseline"] = formatValue(n.Baseline)
	}
	if n.Status == StatusResolved {
		a.EndsAt = rfc3339(n.EndsAt)
	} else if resend > 0 {
		a.EndsAt = rfc3339(n.At.Add(4 * resend))
	}
	return []amAlert{a}
}

type alertmanagerSender struct {
	ep     endpoint
	resend time.Duration
}

func (s *alertmanagerSender) send(ctx context.Context, n Notification) error {
	return s.ep.post(ctx, alertmanagerPayload(n, s.resend))
}
