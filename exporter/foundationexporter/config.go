package foundationexporter // import "github.com/anvil/anvilcol/exporter/foundationexporter"

import (
	"errors"
	"fmt"
	"net/url"

	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/config/configretry"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
)

// Config is the configuration of the foundation exporter.
type Config struct {
	// ClientConfig is the HTTP client: endpoint (required, the base URL;
	// records go to {endpoint}/v1/metrics), headers, auth, tls, timeout
	// (default 30s) and compression (default gzip).
	ClientConfig confighttp.ClientConfig `mapstructure:",squash"`
	// QueueConfig is the sending queue (default: enabled, in memory, 10
	// consumers, 1000 batches). Set `storage` to a storage extension ID (e.g.
	// file_storage) for a persistent queue that survives restarts.
	QueueConfig configoptional.Optional[exporterhelper.QueueBatchConfig] `mapstructure:"sending_queue"`
	// RetryConfig is the retry of retryable failures (network errors,
	// 408, 429, 5xx, honouring Retry-After). Default: enabled, initial 5s,
	// max interval 30s, max elapsed time 300s.
	RetryConfig configretry.BackOffConfig `mapstructure:"retry_on_failure"`

	// MetricPrefix is prepended verbatim to every metric name (default "", no
	// prefix); include the separator, e.g. "anvil.".
	MetricPrefix string `mapstructure:"metric_prefix"`
	// ResourceTags lists the resource attributes copied into every record's
	// tags (default [service.name, service.instance.id, host.name, tenant_id]:
	// with the writer identity, two nodes never share a series). A data point
	// attribute of the same name takes precedence.
	ResourceTags []string `mapstructure:"resource_tags"`
	// MaxBatchPoints is the maximum number of records per request (default 1000).
	MaxBatchPoints int `mapstructure:"max_batch_points"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// Validate checks the configuration.
func (cfg *Config) Validate() error {
	var errs []error
	if cfg.ClientConfig.Endpoint == "" {
		errs = append(errs, errors.New("`endpoint` is required: the base URL of Foundation, e.g. https://foundation.internal"))
	} else if u, err := url.Parse(cfg.ClientConfig.Endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("`endpoint` %q must be an http:// or https:// URL", cfg.ClientConfig.Endpoint))
	}
	if cfg.MaxBatchPoints <= 0 {
		errs = append(errs, fmt.Errorf("`max_batch_points` must be positive, got %d", cfg.MaxBatchPoints))
	}
	for i, k := range cfg.ResourceTags {
		if k == "" {
			errs = append(errs, fmt.Errorf("`resource_tags[%d]` must not be empty", i))
		}
	}
	return errors.Join(errs...)
}
