package alertprocessor // import "github.com/anvil/anvilcol/processor/alertprocessor"

import (
	"context"
	"net/http"
)

// webhookVersion is the version of the webhook payload.
const webhookVersion = "1"

type webhookSender struct {
	client *http.Client
	url    string
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
		Version: webhookVersion, Status: n.Status, Repeat: n.Repeat, Rule: n.Rule, Severity: n.Severity,
		Summary: n.Summary, Value: jsonFloat(n.Value), Threshold: jsonFloat(n.Threshold), Op: n.Op, Stat: n.Stat,
		Labels: labels, DedupKey: n.DedupKey, StartsAt: rfc3339(n.StartsAt), EndsAt: rfc3339(n.EndsAt),
		Timestamp: rfc3339(n.At),
	}
}

func (s *webhookSender) send(ctx context.Context, n Notification) error {
	return postJSON(ctx, s.client, s.url, newWebhookPayload(n))
}
