// Package ratelog logs a repeating error at most once per interval per key, so
// components count every occurrence in telemetry but never log per item on a
// hot path (STYLE.md: "errors that repeat are counted and logged once in a while").
package ratelog // import "github.com/anvil/anvilcol/internal/ratelog"

import (
	"sync"
	"time"

	"go.uber.org/zap"
)

// DefaultInterval is how often one kind of error may be logged.
const DefaultInterval = time.Minute

// Logger wraps a zap logger; Warn/Error log a message only if the same key was
// not logged within the interval, adding the number of suppressed repeats.
type Logger struct {
	log      *zap.Logger
	interval time.Duration
	now      func() time.Time

	mu   sync.Mutex
	last map[string]entry
}

type entry struct {
	at         time.Time
	suppressed int64
}

// New returns a Logger; interval <= 0 means DefaultInterval.
func New(log *zap.Logger, interval time.Duration) *Logger {
	if interval <= 0 {
		interval = DefaultInterval
	}
	return &Logger{log: log, interval: interval, now: time.Now, last: map[string]entry{}}
}

// SetClock replaces the clock (tests).
func (l *Logger) SetClock(now func() time.Time) { l.now = now }

func (l *Logger) allow(key string) (bool, int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	e, seen := l.last[key]
	if seen && now.Sub(e.at) < l.interval {
		e.suppressed++
		l.last[key] = e
		return false, 0
	}
	if len(l.last) > 1024 { // keys are error kinds; this only guards against misuse
		clear(l.last)
	}
	l.last[key] = entry{at: now}
	return true, e.suppressed
}

// Warn logs at warn level, rate-limited by key.
func (l *Logger) Warn(key, msg string, fields ...zap.Field) {
	if ok, n := l.allow(key); ok {
		l.log.Warn(msg, append(fields, zap.Int64("suppressed_since_last", n))...)
	}
}

// Error logs at error level, rate-limited by key.
func (l *Logger) Error(key, msg string, fields ...zap.Field) {
	if ok, n := l.allow(key); ok {
		l.log.Error(msg, append(fields, zap.Int64("suppressed_since_last", n))...)
	}
}
