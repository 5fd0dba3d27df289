package logstorage

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap/confmaptest"
	"go.opentelemetry.io/collector/confmap/xconfmap"

	"github.com/anvil/anvilcol/extension/logstorage/internal/metadata"
)

func TestLoadConfig(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)
	tests := []struct {
		id      component.ID
		want    *Config
		wantErr string
	}{
		{id: component.NewID(metadata.Type), want: &Config{Directory: defaultDirectory, SegmentSize: defaultSegmentSize, MaxSize: defaultMaxSize}},
		{id: component.NewIDWithName(metadata.Type, "custom"), want: &Config{Directory: "/tmp", CreateDirectory: true, SegmentSize: 1 << 20, MaxSize: 100 << 20}},
		{id: component.NewIDWithName(metadata.Type, "small_segment"), wantErr: "segment_size must be within [4096, 1073741824] bytes, got 100"},
		{id: component.NewIDWithName(metadata.Type, "small_max"), wantErr: "max_size must be at least 2 x segment_size (2097152 bytes), got 1048576"},
		{id: component.NewIDWithName(metadata.Type, "missing_dir"), wantErr: `directory "/nonexistent/anvilcol/log_storage" does not exist; create it or set create_directory: true`},
	}
	for _, tt := range tests {
		t.Run(tt.id.String(), func(t *testing.T) {
			cfg := NewFactory().CreateDefaultConfig()
			sub, err := cm.Sub(tt.id.String())
			require.NoError(t, err)
			require.NoError(t, sub.Unmarshal(cfg))
			if tt.wantErr != "" {
				assert.ErrorContains(t, xconfmap.Validate(cfg), tt.wantErr)
				return
			}
			assert.Equal(t, tt.want, cfg)
			if tt.want.Directory == "/tmp" {
				assert.NoError(t, xconfmap.Validate(cfg))
			}
		})
	}
}

func TestValidateDirectoryNotADirectory(t *testing.T) {
	cfg := &Config{Directory: filepath.Join("testdata", "config.yaml"), SegmentSize: defaultSegmentSize, MaxSize: defaultMaxSize}
	assert.ErrorContains(t, cfg.Validate(), "is not a directory")
	cfg.Directory = ""
	assert.ErrorContains(t, cfg.Validate(), "directory must be set")
}
