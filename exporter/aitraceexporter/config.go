package aitraceexporter // import "github.com/anvil/anvilcol/exporter/aitraceexporter"

import (
	"errors"
	"fmt"

	"github.com/anvil/anvilcol/internal/eventmatch"
	"github.com/anvil/anvilcol/internal/httpexport"
)

// Config is the configuration of the aitrace exporter.
type Config struct {
	// Config is the HTTP client (endpoint: the base URL; artifacts go to
	// {endpoint}/v1/artifacts, traces to {endpoint}/v1/traces), the sending
	// queue and the retry, with the defaults httpexport documents.
	httpexport.Config `mapstructure:",squash"`

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
	if err := cfg.CheckEndpoint("AITrace", "https://aitrace.internal"); err != nil {
		errs = append(errs, err)
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
