// Package httpexport is what the exporters that POST to one HTTP backend
// (foundation, aitrace) share: the client, sending-queue and retry settings
// with their defaults, the endpoint check, and the exporterhelper options.
// Each exporter embeds Config in its own (`mapstructure:",squash"`, so the
// keys stay top-level) and keeps its own paths, payloads and status mapping.
package httpexport // import "github.com/anvil/anvilcol/internal/httpexport"

import (
	"fmt"
	"net/url"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configcompression"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/config/configretry"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
)

// Config is the transport part of an HTTP exporter's configuration.
type Config struct {
	// ClientConfig is the HTTP client: endpoint (required, the backend's base
	// URL), headers, auth, tls, timeout (default 30s) and compression
	// (default gzip).
	ClientConfig confighttp.ClientConfig `mapstructure:",squash"`
	// QueueConfig is the sending queue (default: enabled, in memory, 10
	// consumers, 1000 batches). Set `storage` to a storage extension ID (e.g.
	// file_storage) for a persistent queue that survives restarts.
	QueueConfig configoptional.Optional[exporterhelper.QueueBatchConfig] `mapstructure:"sending_queue"`
	// RetryConfig is the retry of retryable failures (network errors,
	// 408, 429, 5xx, honouring Retry-After). Default: enabled, initial 5s,
	// max interval 30s, max elapsed time 300s.
	RetryConfig configretry.BackOffConfig `mapstructure:"retry_on_failure"`
}

// NewDefaultConfig returns the defaults documented on Config.
func NewDefaultConfig() Config {
	client := confighttp.NewDefaultClientConfig()
	client.Timeout = 30 * time.Second
	client.Compression = configcompression.TypeGzip
	return Config{
		ClientConfig: client,
		QueueConfig:  configoptional.Some(exporterhelper.NewDefaultQueueConfig()),
		RetryConfig:  configretry.NewDefaultBackOffConfig(),
	}
}

// CheckEndpoint reports a missing endpoint (naming backend, e.g. "AITrace",
// and an example base URL) or one that is not an http:// or https:// URL.
// It is not named Validate: the embedding Config's Validate calls it with
// its backend's words.
func (c *Config) CheckEndpoint(backend, example string) error {
	ep := c.ClientConfig.Endpoint
	if ep == "" {
		return fmt.Errorf("`endpoint` is required: the base URL of %s, e.g. %s", backend, example)
	}
	if u, err := url.Parse(ep); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("`endpoint` %q must be an http:// or https:// URL", ep)
	}
	return nil
}

// Options are the exporterhelper options of an exporter on c: its start and
// shutdown, no data mutation, the retry and queue of c, and no
// exporterhelper timeout (the HTTP client's timeout bounds each request).
func (c *Config) Options(start component.StartFunc, shutdown component.ShutdownFunc) []exporterhelper.Option {
	return []exporterhelper.Option{
		exporterhelper.WithStart(start),
		exporterhelper.WithShutdown(shutdown),
		exporterhelper.WithCapabilities(consumer.Capabilities{MutatesData: false}),
		exporterhelper.WithTimeout(exporterhelper.TimeoutConfig{Timeout: 0}),
		exporterhelper.WithRetry(c.RetryConfig),
		exporterhelper.WithQueue(c.QueueConfig),
	}
}
