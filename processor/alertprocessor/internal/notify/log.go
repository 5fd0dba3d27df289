package notify // import "github.com/anvil/anvilcol/processor/alertprocessor/internal/notify"

import (
	"context"

	"go.uber.org/zap"
)

// LogConfig holds the keys of a log notifier: none of its own.
type LogConfig struct {
	_ struct{}
}

func buildLog(_ *Config, b *builder) ([]destination, error) {
	return []destination{{sender: &logSender{logger: b.set.Telemetry.Logger}}}, nil
}

// logSender writes one structured log line per notification.
type logSender struct {
	logger *zap.Logger
}

func (s *logSender) send(_ context.Context, n Notification) error {
	fields := []zap.Field{
		zap.String("rule", n.Rule),
		zap.String("status", n.Status),
		zap.Bool("repeat", n.Repeat),
		zap.String("severity", n.Severity.String()),
		zap.String("summary", n.Summary),
		zap.Float64("value", n.Value),
		zap.String("op", n.Op),
		zap.Float64("threshold", n.Threshold),
		zap.Any("labels", n.Labels),
		zap.String("dedup_key", n.DedupKey),
	}
	if n.Compare != "" {
		fields = append(fields, zap.String("compare", n.Compare), zap.Float64("current", n.Current), zap.Float64("baseline", n.Baseline))
	}
	s.logger.Info("alert "+n.Status, fields...)
	return nil
}
