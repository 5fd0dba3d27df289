package alertprocessor

import (
	"context"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/provider/envprovider"
	"go.opentelemetry.io/collector/confmap/provider/fileprovider"
	"go.uber.org/zap"

	"github.com/anvil/anvilcol/processor/alertprocessor/internal/notify"
)

// shippedEnv switches on every notifier of the shipped configs and gives
// each its address.
var shippedEnv = map[string]string{
	"ANVILCOL_SLACK_ENABLED":         "true",
	"ANVILCOL_SLACK_WEBHOOK_URL":     "https://hooks.slack.com/services/T/B/X",
	"ANVILCOL_PAGERDUTY_ENABLED":     "true",
	"ANVILCOL_PAGERDUTY_ROUTING_KEY": "routing-key",
	"ANVILCOL_ALERTMANAGER_ENABLED":  "true",
	"ANVILCOL_ALERTMANAGER_URL":      "http://am-0:9093",
	"ANVILCOL_ALERTMANAGER_URLS":     "[http://am-0:9093, http://am-1:9093]",
	"ANVILCOL_ALERT_WEBHOOK_ENABLED": "true",
	"ANVILCOL_ALERT_WEBHOOK_URL":     "http://hooks.example/anvil",
	// e2e/alert_test.go
	"ALERT_WEBHOOK_URL":     "http://hooks.example/anvil",
	"PAGERDUTY_URL":         "http://pagerduty.example/v2/enqueue",
	"PAGERDUTY_ROUTING_KEY": "routing-key",
	"ALERTMANAGER_URL":      "http://am-0:9093",
	"HEALTH_PORT":           "13133",
}

// loadShipped resolves the collector config at path (with ${env:} as the
// collector does) and returns its alert processors' configs by id.
func loadShipped(t *testing.T, path string) map[string]*Config {
	t.Helper()
	r, err := confmap.NewResolver(confmap.ResolverSettings{
		URIs:              []string{"file:" + path},
		ProviderFactories: []confmap.ProviderFactory{fileprovider.NewFactory(), envprovider.NewFactory()},
		ProviderSettings:  confmap.ProviderSettings{Logger: zap.NewNop()},
		DefaultScheme:     "env",
	})
	require.NoError(t, err)
	conf, err := r.Resolve(context.Background())
	require.NoError(t, err, path)
	procs, err := conf.Sub("processors")
	require.NoError(t, err)
	out := map[string]*Config{}
	for id := range procs.ToStringMap() {
		if id != "alert" && !strings.HasPrefix(id, "alert/") {
			continue
		}
		sub, err := procs.Sub(id)
		require.NoError(t, err)
		cfg := createDefaultConfig().(*Config)
		require.NoError(t, sub.Unmarshal(cfg), "%s: %s", path, id)
		out[id] = cfg
	}
	return out
}

// e2eAlertConfig writes the collector config of e2e/alert_test.go (its
// raw string constant that configures notifiers) to a file.
func e2eAlertConfig(t *testing.T) string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "../../e2e/alert_test.go", nil, 0)
	require.NoError(t, err)
	var yaml string
	ast.Inspect(f, func(n ast.Node) bool {
		if lit, ok := n.(*ast.BasicLit); ok && lit.Kind == token.STRING && strings.Contains(lit.Value, "notifiers:") {
			yaml, err = strconv.Unquote(lit.Value)
			require.NoError(t, err)
		}
		return yaml == ""
	})
	require.NotEmpty(t, yaml, "no config with notifiers in e2e/alert_test.go")
	path := filepath.Join(t.TempDir(), "alert.yaml")
	require.NoError(t, os.WriteFile(path, []byte(yaml), 0o600))
	return path
}

func TestShippedConfigsParseNotifiersIntoTheirTypes(t *testing.T) {
	for k, v := range shippedEnv {
		t.Setenv(k, v)
	}
	for path, notifiers := range map[string]int{"../../config/gateway.yaml": 5, "../../config/alerting.yaml": 5, e2eAlertConfig(t): 4} {
		procs := loadShipped(t, path)
		require.Len(t, procs, 1, path)
		for id, cfg := range procs {
			require.NoError(t, cfg.Validate(), "%s: %s", path, id)
			require.Len(t, cfg.Notifiers, notifiers, "%s: %s", path, id)
			for i, n := range cfg.Notifiers {
				where := path + ": " + id + ".notifiers[" + strconv.Itoa(i) + "] " + n.Type
				assert.True(t, n.Enabled, where)
				// Every type's keys land in its sub-struct; the other sub-structs stay empty.
				others := map[string]any{
					notify.TypeSlack: n.Slack, notify.TypePagerDuty: n.PagerDuty, notify.TypeAlertmanager: n.Alertmanager,
					notify.TypeWebhook: n.Webhook, notify.TypeLog: n.Log,
				}
				require.Contains(t, others, n.Type, where)
				delete(others, n.Type)
				for typ, sub := range others {
					assert.Zero(t, sub, "%s: the %s sub-struct", where, typ)
				}
				switch n.Type {
				case notify.TypeSlack:
					assert.Equal(t, "https://hooks.slack.com/services/T/B/X", n.Slack.WebhookURL, where)
					assert.Equal(t, notify.SeverityWarning, n.MinSeverity, where)
				case notify.TypePagerDuty:
					assert.Equal(t, "routing-key", n.PagerDuty.RoutingKey, where)
					assert.Equal(t, notify.SeverityError, n.MinSeverity, where)
				case notify.TypeAlertmanager:
					assert.Equal(t, time.Minute, n.Alertmanager.ResendInterval, where)
					if len(n.Alertmanager.Endpoints) > 0 {
						assert.Equal(t, []string{"http://am-0:9093", "http://am-1:9093"}, n.Alertmanager.Endpoints, where)
					} else {
						assert.Equal(t, "http://am-0:9093", n.Endpoint, where)
					}
				case notify.TypeWebhook:
					assert.Equal(t, "http://hooks.example/anvil", n.Endpoint, where)
				}
			}
		}
	}
}

func TestShippedConfigsLeaveEnvGatedNotifiersOff(t *testing.T) {
	procs := loadShipped(t, "../../config/gateway.yaml")
	require.Contains(t, procs, "alert")
	var on []string
	for _, n := range procs["alert"].Notifiers {
		if n.Enabled {
			on = append(on, n.Type)
		}
	}
	assert.Equal(t, []string{notify.TypeLog}, on)
	require.NoError(t, procs["alert"].Validate())
}
