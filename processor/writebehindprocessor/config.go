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
	// MaxInFlight bounds the requests handed to the next consumer at once.
	// Each is delivered on its own goroutine and, behind an exporter with
	// sending_queue::wait_for_result, waits for its batch's export: so that
	// batches fill to their min_size, every request that fits
	// memory_limit_mib is in flight. Default 1024.
	MaxInFlight int `mapstructure:"max_in_flight"`
	// MemoryLimitMiB bounds the encoded (protobuf) size of the requests
	// being delivered (held in memory, or read back from storage); beyond it
	// a request waits in storage only and is read back when its turn comes
	// (during an outage of the next hop). In memory a request takes several
	// times its encoded size. A single request larger than the limit is
	// delivered alone. Default 2.
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
	if cfg.MaxInFlight <= 0 {
		errs = append(errs, fmt.Errorf("max_in_flight must be positive, got %d", cfg.MaxInFlight))
	}
	if cfg.MemoryLimitMiB <= 0 {
		errs = append(errs, fmt.Errorf("memory_limit_mib must be positive, got %d", cfg.MemoryLimitMiB))
	}
	if cfg.RetryInterval <= 0 {
		errs = append(errs, fmt.Errorf("retry_interval must be positive, got %v", cfg.RetryInterval))
	}
	return errors.Join(errs...)
}
