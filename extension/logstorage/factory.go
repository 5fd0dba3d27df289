package logstorage // import "github.com/anvil/anvilcol/extension/logstorage"

import (
	"context"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/extension"

	"github.com/anvil/anvilcol/extension/logstorage/internal/metadata"
)

// NewFactory returns the factory of the `log_storage` extension.
func NewFactory() extension.Factory {
	return extension.NewFactory(metadata.Type, createDefaultConfig, createExtension, metadata.ExtensionStability)
}

func createDefaultConfig() component.Config {
	return &Config{Directory: defaultDirectory, SegmentSize: defaultSegmentSize, MaxSize: defaultMaxSize}
}

func createExtension(_ context.Context, set extension.Settings, cfg component.Config) (extension.Extension, error) {
	return newLogStorage(set, cfg.(*Config))
}
