package alertprocessor // import "github.com/anvil/anvilcol/processor/alertprocessor"

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/anvil/anvilcol/internal/httpstatus"
)

// slackMinGap is Slack's rate limit for incoming webhooks: one message per
// second per webhook.
const slackMinGap = time.Second

// slackGates pace the messages of each webhook URL, shared by every slack
// notifier (and processor) posting to it.
var slackGates sync.Map // url -> *rateGate

// rateGate hands out send slots at least gap apart. It keeps no clock: each
// caller passes its processor's.
type rateGate struct {
	mu   sync.Mutex
	next time.Time
	gap  time.Duration
}

// reserve takes the next slot for a caller at now and returns it.
func (g *rateGate) reserve(now time.Time) time.Time {
	g.mu.Lock()
	defer g.mu.Unlock()
	at := g.next
	if at.Before(now) {
		at = now
	}
	g.next = at.Add(g.gap)
	return at
}

// wait blocks until this caller's slot on clk (or ctx ends).
func (g *rateGate) wait(ctx context.Context, clk clock) error {
	now := clk.Now()
	if d := g.reserve(now).Sub(now); d > 0 {
		select {
		case <-clk.After(d):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// delay pushes the next slot to at least now+d (Slack answered 429 with
// Retry-After).
func (g *rateGate) delay(now time.Time, d time.Duration) {
	g.mu.Lock()
	if at := now.Add(d); at.After(g.next) {
		g.next = at
	}
	g.mu.Unlock()
}

type slackSender struct {
	client  *http.Client
	url     string
	channel string
	gate    *rateGate
	clk     clock
}

func newSlackSender(client *http.Client, url, channel string, clk clock) *slackSender {
	g, _ := slackGates.LoadOrStore(url, &rateGate{gap: slackMinGap})
	return &slackSender{client: client, url: url, channel: channel, gate: g.(*rateGate), clk: clk}
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
	return "[FIRING:" + n.Severity + "]"
}

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
	fields := []slackText{
		{Type: "mrkdwn", Text: "*Value*\n" + formatValue(n.Value)},
		{Type: "mrkdwn", Text: "*Threshold*\n" + n.Stat + " " + n.Op + " " + formatValue(n.Threshold)},
		{Type: "mrkdwn", Text: "*Severity*\n" + n.Severity},
		{Type: "mrkdwn", Text: "*Labels*\n" + formatLabels(n.Labels)},
		{Type: "mrkdwn", Text: "*Since*\n" + rfc3339(n.StartsAt)},
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

func (s *slackSender) send(ctx context.Context, n Notification) error {
	if err := s.gate.wait(ctx, s.clk); err != nil {
		return err
	}
	err := postJSON(ctx, s.client, s.url, slackPayload(n, s.channel))
	var se *httpstatus.StatusError
	if errors.As(err, &se) && se.Code == http.StatusTooManyRequests {
		d := se.RetryAfter
		if d == 0 {
			d = slackMinGap
		}
		s.gate.delay(s.clk.Now(), d)
	}
	return err
}
