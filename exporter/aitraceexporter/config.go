package aitraceexporter // import "github.com/anvil/anvilcol/exporter/aitraceexporter"

import (
	"errors"
	"fmt"
	"net/url"

	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/config/configretry"
	"go.opentelemetry.io/collector/exporter/exporterhelper"

	"github.com/anvil/anvilcol/internal/eventmatch"
)

// Config is the configuration of the aitrace exporter.
type Config struct {
	// ClientConfig is the HTTP client: endpoint (required, the base URL;
	// artifacts go to {endpoint}/v1/artifacts, traces to {endpoint}/v1/traces),
	// headers, auth, tls, timeout (default 30s) and compression (default gzip).
	ClientConfig confighttp.ClientConfig `mapstructure:",squash"`
	// QueueConfig is the sending queue (default: enabled, in memory, 10
	// consumers, 1000 batches). Set `storage` to a storage extension ID (e.g.
	// file_storage) for a persistent queue that survives restarts.
	QueueConfig configoptional.Optional[exporterhelper.QueueBatchConfig] `mapstructure:"sending_queue"`
	// RetryConfig is the retry of retryable failures (network errors,
	// 408, 429, 5xx, honouring Retry-After). Default: enabled, initial 5s,
	// max interval 30s, max elapsed time 300s.
	RetryConfig configretry.BackOffConfig `mapstructure:"retry_on_failure"`

	// ArtifactEvents are the event names (patterns, `*` matches any run of
	// characters including dots) whose log records register a dataset
	// artifact (default [anvil.export.generate.stop, anvil.export.completed]).
	ArtifactEvents []string `mapstructure:"artifact_events"`
	// DedupCacheSize is how many recently registered export ids are
	// remembered so that one export reported by several events registers once
	// (default 10000).
	DedupCacheSize int `mapstructure:"dedup_cache_size"`
	// MaxBatchSpans is the maximum number of spans per traces request
	// (default 1000).
	MaxBatchSpans int `mapstructure:"max_batch_spans"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// Validate checks the configuration.
func (cfg *Config) Validate() error {
	var errs []error
	if cfg.ClientConfig.Endpoint == "" {
		errs = append(errs, errors.New("`endpoint` is required: the base URL of AITrace, e.g. https://aitrace.internal"))
	} else if u, err := url.Parse(cfg.ClientConfig.Endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("`endpoint` %q must be an http:// or https:// URL", cfg.ClientConfig.Endpoint))
	}
	if len(cfg.ArtifactEvents) == 0 {
		errs = append(errs, errors.New("`artifact_events` must list at least one event name, e.g. anvil.export.completed"))
	}
	for i, p := range cfg.ArtifactEvents {
		if err := eventmatch.Validate(p); err != nil {
			errs = append(errs, fmt.Errorf("`artifact_events[%d]`: %w", i, err))
		}
	}
	if cfg.DedupCacheSize <= 0 {
		errs = append(errs, fmt.Errorf("`dedup_cache_size` must be positive, got %d", cfg.DedupCacheSize))
	}
	if cfg.MaxBatchSpans <= 0 {
		errs = append(errs, fmt.Errorf("`max_batch_spans` must be positive, got %d", cfg.MaxBatchSpans))
	}
	return errors.Join(errs...)
}
