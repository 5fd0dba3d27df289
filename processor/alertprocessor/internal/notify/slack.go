package notify // import "github.com/anvil/anvilcol/processor/alertprocessor/internal/notify"

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/anvil/anvilcol/internal/httpstatus"
)

// SlackConfig holds the keys of a slack notifier.
type SlackConfig struct {
	// WebhookURL is the incoming-webhook URL (used instead of `endpoint`). Required.
	WebhookURL string `mapstructure:"webhook_url"`
	// Channel overrides the webhook's channel. Default "" (the webhook's own).
	Channel string `mapstructure:"channel"`

	_ struct{}
}

// slackMinGap is Slack's rate limit for incoming webhooks: one message per
// second per webhook.
const slackMinGap = time.Second

func checkSlack(c *Config, key func(string) string) []error {
	if c.Slack.WebhookURL == "" {
		return []error{fmt.Errorf("%s is required for a slack notifier", key("webhook_url"))}
	}
	return nil
}

func buildSlack(c *Config, b *builder) ([]destination, error) {
	ep, err := b.endpoint(c, c.Slack.WebhookURL)
	if err != nil {
		return nil, err
	}
	s := &slackSender{ep: ep, channel: c.Slack.Channel, pace: b.pacers.get(ep.url, slackMinGap)}
	return []destination{{sender: s}}, nil
}

// slackMessage is an incoming-webhook message: `text` (the notification
// fallback) plus one Block Kit section.
type slackMessage struct {
	Channel string       `json:"channel,omitempty"`
	Text    string       `json:"text"`
	Blocks  []slackBlock `json:"blocks"`
}

type slackBlock struct {
	Type   string      `json:"type"`
	Text   *slackText  `json:"text,omitempty"`
	Fields []slackText `json:"fields,omitempty"`
}

type slackText struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

// statusTag is "[FIRING:critical]" or "[RESOLVED]".
func statusTag(n Notification) string {
	if n.Status == StatusResolved {
		return "[RESOLVED]"
	}
	return "[FIRING:" + n.Severity.String() + "]"
}

// formatLabels is "k1=v1, k2=v2" sorted by name, "-" without labels.
func formatLabels(l map[string]string) string {
	if len(l) == 0 {
		return "-"
	}
	parts := make([]string, 0, len(l))
	for _, k := range slices.Sorted(maps.Keys(l)) {
		parts = append(parts, k+"="+l[k])
	}
	return strings.Join(parts, ", ")
}

func slackPayload(n Notification, channel string) slackMessage {
	repeat := ""
	if n.Repeat {
		repeat = " (still firing)"
	}
	threshold := n.Stat + " " + n.Op + " " + formatValue(n.Threshold)
	if n.Compare != "" {
		threshold = n.Stat + " " + n.Compare + " " + n.Op + " " + formatValue(n.Threshold)
	}
	fields := []slackText{
		{Type: "mrkdwn", Text: "*Value*\n" + formatValue(n.Value)},
		{Type: "mrkdwn", Text: "*Threshold*\n" + threshold},
		{Type: "mrkdwn", Text: "*Severity*\n" + n.Severity.String()},
		{Type: "mrkdwn", Text: "*Labels*\n" + formatLabels(n.Labels)},
		{Type: "mrkdwn", Text: "*Since*\n" + rfc3339(n.StartsAt)},
	}
	if n.Compare != "" {
		fields = append(fields, slackText{Type: "mrkdwn", Text: "*Current / baseline*\n" + formatValue(n.Current) + " / " + formatValue(n.Baseline)})
	}
	return slackMessage{
		Channel: channel,
		Text:    fmt.Sprintf("%s %s: %s%s", statusTag(n), n.Rule, n.Summary, repeat),
		Blocks: []slackBlock{{
			Type:   "section",
			Text:   &slackText{Type: "mrkdwn", Text: fmt.Sprintf("*%s %s*%s\n%s", statusTag(n), n.Rule, repeat, n.Summary)},
			Fields: fields,
		}},
	}
}

type slackSender struct {
	ep      endpoint
	channel string
	pace    *pacer // the webhook's, shared by every notifier posting to it
}

// send waits for the webhook's slot; a 429 holds the webhook for its
// Retry-After (a second without one) and is retried.
func (s *slackSender) send(ctx context.Context, n Notification) error {
	if err := s.pace.wait(ctx); err != nil {
		return err
	}
	err := s.ep.post(ctx, slackPayload(n, s.channel))
	var se *httpstatus.StatusError
	if errors.As(err, &se) && se.Code == http.StatusTooManyRequests {
		s.pace.delay(cmp.Or(se.RetryAfter, slackMinGap))
	}
	return err
}
