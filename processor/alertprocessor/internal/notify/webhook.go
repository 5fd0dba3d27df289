package notify // import "github.com/anvil/anvilcol/processor/alertprocessor/internal/notify"

import (
	"context"
	"fmt"
)

// WebhookConfig holds the keys of a webhook notifier: none of its own (the
// URL is `endpoint`, authentication `headers` or `auth`).
type WebhookConfig struct {
	_ struct{}
}

// webhookVersion is the version of the webhook payload.
const webhookVersion = "1"

func checkWebhook(c *Config, key func(string) string) []error {
	if c.Endpoint == "" {
		return []error{fmt.Errorf("%s is required for a webhook notifier", key("endpoint"))}
	}
	return nil
}

func buildWebhook(c *Config, b *builder) ([]destination, error) {
	ep, err := b.endpoint(c, c.Endpoint)
	if err != nil {
		return nil, err
	}
	return []destination{{sender: &webhookSender{ep: ep}}}, nil
}

// webhookPayload is the documented JSON a webhook notifier POSTs.
type webhookPayload struct {
	Version   string            `json:"version"`
	Status    string            `json:"status"` // firing or resolved
	Repeat    bool              `json:"repeat"`
	Rule      string            `json:"rule"`
	Severity  string            `json:"severity"`
	Summary   string            `json:"summary"`
	Value     jsonFloat         `json:"value"`
	Threshold jsonFloat         `json:"threshold"`
	Op        string            `json:"op"`
	Stat      string            `json:"stat"`
	Compare   string            `json:"compare,omitempty"`  // baseline rules: ratio or difference
	Current   *jsonFloat        `json:"current,omitempty"`  // baseline rules: the window's statistic
	Baseline  *jsonFloat        `json:"baseline,omitempty"` // baseline rules: the baseline's statistic
	Labels    map[string]string `json:"labels"`
	DedupKey  string            `json:"dedup_key"`
	StartsAt  string            `json:"starts_at"`
	EndsAt    string            `json:"ends_at,omitempty"`
	Timestamp string            `json:"timestamp"`
}

func newWebhookPayload(n Notification) webhookPayload {
	labels := n.Labels
	if labels == nil {
		labels = map[string]string{}
	}
	return webhookPayload{
		Version: webhookVersion, Status: n.Status, Repeat: n.Repeat, Rule: n.Rule, Severity: n.Severity.String(),
		Summary: n.Summary, Value: jsonFloat(n.Value), Threshold: jsonFloat(n.Threshold), Op: n.Op, Stat: n.Stat,
		Compare: n.Compare, Current: baselineValue(n, n.Current), Baseline: baselineValue(n, n.Baseline),
		Labels: labels, DedupKey: n.DedupKey, StartsAt: rfc3339(n.StartsAt), EndsAt: rfc3339(n.EndsAt),
		Timestamp: rfc3339(n.At),
	}
}

type webhookSender struct {
	ep endpoint
}

func (s *webhookSender) send(ctx context.Context, n Notification) error {
	return s.ep.post(ctx, newWebhookPayload(n))
}
