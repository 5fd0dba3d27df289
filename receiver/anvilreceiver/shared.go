package anvilreceiver // import "github.com/anvil/anvilcol/receiver/anvilreceiver"

import (
	"context"
	"sync"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/receiver"
)

// receivers holds one receiver per config, so that the logs, metrics and
// traces pipelines using the same `anvil` receiver share its HTTP server
// (the collector's internal sharedcomponent, which cannot be imported).
var receivers = &sharedMap{m: map[*Config]*sharedReceiver{}}

type sharedMap struct {
	mu sync.Mutex
	m  map[*Config]*sharedReceiver
}

func (s *sharedMap) loadOrStore(cfg *Config, set receiver.Settings) (*sharedReceiver, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r, ok := s.m[cfg]; ok {
		return r, nil
	}
	r, err := newAnvilReceiver(cfg, set)
	if err != nil {
		return nil, err
	}
	sr := &sharedReceiver{r: r}
	sr.remove = func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		delete(s.m, cfg)
	}
	s.m[cfg] = sr
	return sr, nil
}

// sharedReceiver starts and stops the shared receiver once, whichever
// pipeline asks first; once stopped it leaves the map so the same config can
// be created again (collector reloads).
type sharedReceiver struct {
	r         *anvilReceiver
	startOnce sync.Once
	stopOnce  sync.Once
	startErr  error
	remove    func()
}

func (s *sharedReceiver) unwrap() *anvilReceiver { return s.r }

// Start implements component.Component.
func (s *sharedReceiver) Start(ctx context.Context, host component.Host) error {
	s.startOnce.Do(func() { s.startErr = s.r.Start(ctx, host) })
	return s.startErr
}

// Shutdown implements component.Component.
func (s *sharedReceiver) Shutdown(ctx context.Context) error {
	var err error
	s.stopOnce.Do(func() {
		err = s.r.Shutdown(ctx)
		s.remove()
	})
	return err
}
