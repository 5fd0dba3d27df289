package logstorage // import "github.com/anvil/anvilcol/extension/logstorage"

import (
	"errors"
	"fmt"
	"os"
)

const (
	defaultDirectory   = "/var/lib/otelcol/log_storage"
	defaultSegmentSize = 16 << 20
	defaultMaxSize     = 1 << 30

	minSegmentSize = 4 << 10
	maxSegmentSize = 1 << 30
)

// Config of the `log_storage` extension.
type Config struct {
	// Directory holds one subdirectory per client (per component and
	// storage name, named like file_storage's files). It must exist unless
	// CreateDirectory is set. Default /var/lib/otelcol/log_storage.
	Directory string `mapstructure:"directory"`
	// CreateDirectory creates Directory (mode 0750) on start when missing.
	// Default false.
	CreateDirectory bool `mapstructure:"create_directory"`
	// SegmentSize is the size in bytes at which a client's active segment
	// file is closed and a new one started; whole segments are the unit in
	// which disk space is given back. Between 4 KiB and 1 GiB.
	// Default 16777216 (16 MiB).
	SegmentSize int64 `mapstructure:"segment_size"`
	// MaxSize bounds the bytes of segment files of each client. A write that
	// adds data and would take the client over it returns an error wrapping
	// storage.ErrStorageFull (the persistent queue then refuses the request).
	// At least 2 x segment_size. Default 1073741824 (1 GiB).
	MaxSize int64 `mapstructure:"max_size"`
}

// Validate checks every key.
func (cfg *Config) Validate() error {
	var errs []error
	if cfg.Directory == "" {
		errs = append(errs, errors.New("directory must be set"))
	} else if info, err := os.Stat(cfg.Directory); err != nil {
		if !os.IsNotExist(err) {
			errs = append(errs, fmt.Errorf("directory %q: %w", cfg.Directory, err))
		} else if !cfg.CreateDirectory {
			errs = append(errs, fmt.Errorf("directory %q does not exist; create it or set create_directory: true", cfg.Directory))
		}
	} else if !info.IsDir() {
		errs = append(errs, fmt.Errorf("directory %q is not a directory", cfg.Directory))
	}
	if cfg.SegmentSize < minSegmentSize || cfg.SegmentSize > maxSegmentSize {
		errs = append(errs, fmt.Errorf("segment_size must be within [%d, %d] bytes, got %d", minSegmentSize, maxSegmentSize, cfg.SegmentSize))
	}
	if cfg.MaxSize < 2*cfg.SegmentSize {
		errs = append(errs, fmt.Errorf("max_size must be at least 2 x segment_size (%d bytes), got %d", 2*cfg.SegmentSize, cfg.MaxSize))
	}
	return errors.Join(errs...)
}
