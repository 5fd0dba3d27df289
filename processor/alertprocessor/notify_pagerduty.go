package alertprocessor // import "github.com/anvil/anvilcol/processor/alertprocessor"

import (
	"context"
	"net/http"
	"os"
)

// pdMaxSummary is PagerDuty's limit on payload.summary.
const pdMaxSummary = 1024

type pagerDutySender struct {
	client     *http.Client
	url        string
	routingKey string
	source     string
}

func newPagerDutySender(client *http.Client, url, routingKey, source string) *pagerDutySender {
	if source == "" {
		source, _ = os.Hostname()
		if source == "" {
			source = "anvilcol"
		}
	}
	return &pagerDutySender{client: client, url: url, routingKey: routingKey, source: source}
}

// pdEvent is a PagerDuty Events API v2 event.
type pdEvent struct {
	RoutingKey  string     `json:"routing_key"`
	EventAction string     `json:"event_action"` // trigger or resolve
	DedupKey    string     `json:"dedup_key"`
	Client      string     `json:"client,omitempty"`
	Payload     *pdPayload `json:"payload,omitempty"` // trigger only
}

type pdPayload struct {
	Summary       string    `json:"summary"`
	Source        string    `json:"source"`
	Severity      string    `json:"severity"` // critical, error, warning, info
	Timestamp     string    `json:"timestamp"`
	Group         string    `json:"group,omitempty"`
	Class         string    `json:"class"`
	CustomDetails pdDetails `json:"custom_details"`
}

type pdDetails struct {
	Rule      string            `json:"rule"`
	Value     jsonFloat         `json:"value"`
	Threshold jsonFloat         `json:"threshold"`
	Op        string            `json:"op"`
	Stat      string            `json:"stat"`
	Labels    map[string]string `json:"labels"`
	StartsAt  string            `json:"starts_at"`
}

func pagerDutyPayload(n Notification, routingKey, source string) pdEvent {
	ev := pdEvent{RoutingKey: routingKey, DedupKey: n.DedupKey, Client: "anvilcol"}
	if n.Status == StatusResolved {
		ev.EventAction = "resolve"
		return ev
	}
	ev.EventAction = "trigger"
	summary := n.Summary
	if len(summary) > pdMaxSummary {
		summary = summary[:pdMaxSummary]
	}
	labels := n.Labels
	if labels == nil {
		labels = map[string]string{}
	}
	ev.Payload = &pdPayload{
		Summary:   summary,
		Source:    source,
		Severity:  n.Severity,
		Timestamp: rfc3339(n.At),
		Group:     formatLabelsOrEmpty(labels),
		Class:     n.Rule,
		CustomDetails: pdDetails{
			Rule: n.Rule, Value: jsonFloat(n.Value), Threshold: jsonFloat(n.Threshold), Op: n.Op, Stat: n.Stat,
			Labels: labels, StartsAt: rfc3339(n.StartsAt),
		},
	}
	return ev
}

func formatLabelsOrEmpty(l map[string]string) string {
	if len(l) == 0 {
		return ""
	}
	return formatLabels(l)
}

func (s *pagerDutySender) send(ctx context.Context, n Notification) error {
	return postJSON(ctx, s.client, s.url, pagerDutyPayload(n, s.routingKey, s.source))
}
