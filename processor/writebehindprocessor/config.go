package writebehindprocessor // import "github.com/anvil/anvilcol/processor/writebehindprocessor"

import (
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/collector/component"
)

// Config of the `write_behind` processor.
type Config struct {
	// Storage is the storage extension that keeps the requests (required),
	// e.g. log_storage: its Set must be durable against kill -9 when it
	// returns, and it must implement storage.Walker (replay lists the keys).
	Storage component.ID `mapstructure:"storage"`
	// Workers is how many requests are handed to the next consumer at once.
	// The next consumer blocks each until it is exported (an exporter with
	// sending_queue::wait_for_result), so a batching exporter needs several
	// in flight to fill a batch. Default 16.
	Workers int `mapstructure:"workers"`
	// MemoryLimitMiB bounds the encoded (protobuf) size of the requests kept
	// in memory for delivery; beyond it a request is kept only in storage and
	// read back when its turn comes (during an outage of the next hop). In
	// memory a request takes several times its encoded size. Default 4 (an
	// estimate of what waits for its batch's export at 10,000 events/s:
	// about 20 requests of ~70 KiB per signal).
	MemoryLimitMiB int `mapstructure:"memory_limit_mib"`
	// RetryInterval is the wait before a request the next consumer refused
	// with a retryable error is offered again. Default 1s.
	RetryInterval time.Duration `mapstructure:"retry_interval"`
}

// Validate checks every key.
func (cfg *Config) Validate() error {
	var errs []error
	if cfg.Storage == (component.ID{}) {
		errs = append(errs, errors.New("storage is required: the storage extension that keeps the requests (e.g. log_storage)"))
	}
	if cfg.Workers <= 0 {
		errs = append(errs, fmt.Errorf("workers must be positive, got %d", cfg.Workers))
	}
	if cfg.MemoryLimitMiB <= 0 {
		errs = append(errs, fmt.Errorf("memory_limit_mib must be positive, got %d", cfg.MemoryLimitMiB))
	}
	if cfg.RetryInterval <= 0 {
		errs = append(errs, fmt.Errorf("retry_interval must be positive, got %v", cfg.RetryInterval))
	}
	return errors.Join(errs...)
}
