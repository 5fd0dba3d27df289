package notify

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/confmap"
)

func unmarshal(t *testing.T, m map[string]any) (Config, error) {
	t.Helper()
	var c Config
	err := c.Unmarshal(confmap.NewFromStringMap(m))
	return c, err
}

func TestConfigIsWrittenFlatAndDecodesIntoTheTypesSubStruct(t *testing.T) {
	c, err := unmarshal(t, map[string]any{"type": "slack", "webhook_url": "https://hooks/x", "channel": "#a", "min_severity": "warning"})
	require.NoError(t, err)
	assert.Equal(t, "https://hooks/x", c.Slack.WebhookURL)
	assert.Equal(t, "#a", c.Slack.Channel)
	assert.Equal(t, SeverityWarning, c.MinSeverity)
	assert.Equal(t, 1000, c.QueueSize, "defaults kept")
	assert.Zero(t, c.Alertmanager, "another type's defaults are not set")

	c, err = unmarshal(t, map[string]any{"type": "alertmanager", "endpoints": []any{"http://am-0:9093"}})
	require.NoError(t, err)
	assert.Equal(t, []string{"http://am-0:9093"}, c.Alertmanager.Endpoints)
	assert.Equal(t, time.Minute, c.Alertmanager.ResendInterval, "the type's own default")
	assert.Empty(t, c.Check("notifiers[0]"))

	c, err = unmarshal(t, map[string]any{"type": "pagerduty", "routing_key": "k", "source": "gw"})
	require.NoError(t, err)
	assert.Equal(t, PagerDutyConfig{RoutingKey: "k", Source: "gw"}, c.PagerDuty)

	_, err = unmarshal(t, map[string]any{"type": "log", "min_severity": "high"})
	require.ErrorContains(t, err, `'min_severity' unknown severity "high"; use one of critical error warning info`)
	_, err = unmarshal(t, map[string]any{"type": "log", "colour": "red"})
	require.ErrorContains(t, err, "colour")
}

func TestCheckNamesTheKey(t *testing.T) {
	for _, tc := range []struct {
		name  string
		typ   string
		edit  func(*Config)
		error string
	}{
		{"unknown type", "email", func(*Config) {}, "`notifiers[0].type` \"email\" is unknown; use one of slack pagerduty alertmanager webhook log"},
		{"slack webhook_url", TypeSlack, func(*Config) {}, "`notifiers[0].webhook_url` is required for a slack notifier"},
		{"pagerduty routing_key", TypePagerDuty, func(*Config) {}, "`notifiers[0].routing_key` is required for a pagerduty notifier"},
		{"alertmanager endpoints", TypeAlertmanager, func(*Config) {}, "`notifiers[0].endpoints` (or `notifiers[0].endpoint`) is required for an alertmanager notifier"},
		{"alertmanager empty entry", TypeAlertmanager, func(c *Config) { c.Alertmanager.Endpoints = []string{"http://am-0:9093", ""} }, "`notifiers[0].endpoints[1]` is empty"},
		{"alertmanager resend_interval", TypeAlertmanager, func(c *Config) {
			c.Endpoint = "http://am"
			c.Alertmanager.ResendInterval = -time.Second
		}, "`notifiers[0].resend_interval` must not be negative"},
		{"webhook endpoint", TypeWebhook, func(*Config) {}, "`notifiers[0].endpoint` is required for a webhook notifier"},
		{"another type's key", TypeWebhook, func(c *Config) {
			c.Endpoint = "http://x"
			c.Alertmanager.Endpoints = []string{"http://y"}
		}, "`notifiers[0].endpoints` applies to alertmanager notifiers only"},
		{"another type's key, slack", TypePagerDuty, func(c *Config) {
			c.PagerDuty.RoutingKey = "k"
			c.Slack.Channel = "#x"
		}, "`notifiers[0].channel` applies to slack notifiers only"},
		{"min_severity", TypeLog, func(c *Config) { c.MinSeverity = 9 }, "`notifiers[0].min_severity` 9 is unknown"},
		{"queue_size", TypeLog, func(c *Config) { c.QueueSize = 0 }, "`notifiers[0].queue_size` must be positive"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := NewConfig(tc.typ)
			tc.edit(&c)
			var msgs []string
			for _, err := range c.Check("notifiers[0]") {
				msgs = append(msgs, err.Error())
			}
			assert.Contains(t, strings.Join(msgs, "\n"), tc.error)
		})
	}
}

func TestAlertmanagerEndpointIsAOneElementList(t *testing.T) {
	c := NewConfig(TypeAlertmanager)
	c.Endpoint = "http://am-0:9093"
	assert.Empty(t, c.Check("notifiers[0]"), "endpoint alone is a one-element list")
	assert.Equal(t, []string{"http://am-0:9093"}, c.alertmanagerEndpoints())
	c.Alertmanager.Endpoints = []string{"http://am-0:9093/", "http://am-1:9093"}
	assert.Equal(t, []string{"http://am-0:9093", "http://am-1:9093"}, c.alertmanagerEndpoints(), "duplicates and trailing / ignored")
}

func TestEveryTypeHasARowAndASubStruct(t *testing.T) {
	for _, typ := range []string{TypeSlack, TypePagerDuty, TypeAlertmanager, TypeWebhook, TypeLog} {
		nt, ok := lookup(typ)
		require.True(t, ok, typ)
		c := NewConfig(typ)
		assert.NotNil(t, nt.sub(&c), typ)
		assert.NotNil(t, nt.build, typ)
	}
}

func TestSeverityText(t *testing.T) {
	for _, s := range []Severity{SeverityInfo, SeverityWarning, SeverityError, SeverityCritical} {
		b, err := s.MarshalText()
		require.NoError(t, err)
		var back Severity
		require.NoError(t, back.UnmarshalText(b))
		assert.Equal(t, s, back)
	}
	assert.Less(t, SeverityInfo, SeverityWarning)
	assert.Less(t, SeverityError, SeverityCritical)
	var s Severity
	require.NoError(t, s.UnmarshalText(nil))
	assert.Zero(t, s, `"" is not set`)
	assert.Error(t, s.UnmarshalText([]byte("fatal")))
}
