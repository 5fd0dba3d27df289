package notify

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/confmap"
)

// The collector marshals configs (print-config) with every squashed key,
// the other types' zero ones included; they read back as the same config.
func TestConfigRoundTrips(t *testing.T) {
	for _, typ := range typeNames() {
		c := NewConfig(typ)
		c.Endpoint = "http://x"
		switch typ {
		case TypeSlack:
			c.Slack.WebhookURL = "http://hooks"
		case TypePagerDuty:
			c.PagerDuty.RoutingKey = "k"
		}
		conf := confmap.New()
		require.NoError(t, conf.Marshal(c), typ)
		var back Config
		require.NoError(t, back.Unmarshal(conf), typ)
		assert.Equal(t, c, back, typ)
		assert.Empty(t, back.Check("notifiers[0]"), typ)
	}
}
