package zerostepprocessor // import "github.com/anvil/anvilcol/processor/zerostepprocessor"

import (
	"errors"
	"fmt"
	"time"
)

// Config of the `zero_step` processor. Every key is optional.
type Config struct {
	// Hold is how long a new cumulative series is shown at zero, counted from
	// the first of its points this processor sees; its real value passes from
	// the first point after that (or, if no point comes, the last one seen is
	// sent when the hold ends). For a scraper that reads the series at a
	// resolution R with scrape interval S it must be more than S + R: the
	// deploy/prometheus rules read counters at 15 s steps, so 35s for a 15 s
	// scrape. Default 35s.
	Hold time.Duration `mapstructure:"hold"`
	// MaxAge makes a series new only when its start timestamp is at most this
	// long before its first point seen here. An older series seen for the
	// first time (a writer that moved here from another gateway replica, or
	// every series after this collector restarted) passes at once: its value
	// is history, and showing 0 first would count that history again.
	// Default 2m.
	MaxAge time.Duration `mapstructure:"max_age"`
	// SeriesTTL forgets a series not seen this long. Default 1h.
	SeriesTTL time.Duration `mapstructure:"series_ttl"`
	// MaxSeries bounds the series remembered; beyond it a new series passes
	// unheld (logged once a minute). Default 200000.
	MaxSeries int `mapstructure:"max_series"`
}

// Validate checks every key's range.
func (cfg *Config) Validate() error {
	var errs []error
	if cfg.Hold <= 0 {
		errs = append(errs, fmt.Errorf("hold must be positive, got %v", cfg.Hold))
	}
	if cfg.MaxAge <= 0 {
		errs = append(errs, fmt.Errorf("max_age must be positive, got %v", cfg.MaxAge))
	}
	if cfg.SeriesTTL < cfg.Hold {
		errs = append(errs, fmt.Errorf("series_ttl %v must be at least hold %v", cfg.SeriesTTL, cfg.Hold))
	}
	if cfg.MaxSeries <= 0 {
		errs = append(errs, fmt.Errorf("max_series must be positive, got %d", cfg.MaxSeries))
	}
	return errors.Join(errs...)
}
