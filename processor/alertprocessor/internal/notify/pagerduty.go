package notify // import "github.com/anvil/anvilcol/processor/alertprocessor/internal/notify"

import (
	"cmp"
	"context"
	"fmt"
	"os"
)

// PagerDutyConfig holds the keys of a pagerduty notifier (Events API v2).
type PagerDutyConfig struct {
	// RoutingKey is the integration key. Required.
	RoutingKey string `mapstructure:"routing_key"`
	// Source is payload.source. Default: the host name.
	Source string `mapstructure:"source"`

	_ struct{}
}

// DefaultPagerDutyEndpoint is the PagerDuty Events API v2 enqueue URL, the
// `endpoint` of a pagerduty notifier without one.
const DefaultPagerDutyEndpoint = "https://events.pagerduty.com/v2/enqueue"

// pdMaxSummary is PagerDuty's limit on payload.summary.
const pdMaxSummary = 1024

func checkPagerDuty(c *Config, key func(string) string) []error {
	if c.PagerDuty.RoutingKey == "" {
		return []error{fmt.Errorf("%s is required for a pagerduty notifier", key("routing_key"))}
	}
	return nil
}

func buildPagerDuty(c *Config, b *builder) ([]destination, error) {
	ep, err := b.endpoint(c, cmp.Or(c.Endpoint, DefaultPagerDutyEndpoint))
	if err != nil {
		return nil, err
	}
	source := c.PagerDuty.Source
	if source == "" {
		host, _ := os.Hostname()
		source = cmp.Or(host, "anvilcol")
	}
	return []destination{{sender: &pagerDutySender{ep: ep, routingKey: c.PagerDuty.RoutingKey, source: source}}}, nil
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
	Compare   string            `json:"compare,omitempty"`  // baseline rules
	Current   *jsonFloat        `json:"current,omitempty"`  // baseline rules
	Baseline  *jsonFloat        `json:"baseline,omitempty"` // baseline rules
	Labels    map[string]string `json:"labels"`
	StartsAt  string            `json:"starts_at"`
}

// pagerDutyPayload is a trigger for a firing alert, a resolve (without a
// payload, which PagerDuty ignores) for a resolved one; the dedup key ties
// them together.
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
	group := ""
	if len(labels) > 0 {
		group = formatLabels(labels)
	}
	ev.Payload = &pdPayload{
		Summary:   summary,
		Source:    source,
		Severity:  n.Severity.String(),
		Timestamp: rfc3339(n.At),
		Group:     group,
		Class:     n.Rule,
		CustomDetails: pdDetails{
			Rule: n.Rule, Value: jsonFloat(n.Value), Threshold: jsonFloat(n.Threshold), Op: n.Op, Stat: n.Stat,
			Compare: n.Compare, Current: baselineValue(n, n.Current), Baseline: baselineValue(n, n.Baseline),
			Labels: labels, StartsAt: rfc3339(n.StartsAt),
		},
	}
	return ev
}

type pagerDutySender struct {
	ep         endpoint
	routingKey string
	source     string
}

func (s *pagerDutySender) send(ctx context.Context, n Notification) error {
	return s.ep.post(ctx, pagerDutyPayload(n, s.routingKey, s.source))
}
