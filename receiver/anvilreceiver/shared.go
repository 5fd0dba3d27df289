package anvilreceiver // import "github.com/anvil/anvilcol/receiver/anvilreceiver"

import (
	"go.opentelemetry.io/collector/receiver"

	"github.com/anvil/anvilcol/internal/clock"
	"github.com/anvil/anvilcol/internal/sharedcomponent"
)

// receivers holds one receiver per config, so that the logs, metrics and
// traces pipelines using the same `anvil` receiver share its HTTP server
// (internal/sharedcomponent, as otlpreceiver does: started by the first
// Start, stopped by the first Shutdown, then forgotten so the same config can
// be created again on a reload).
var receivers = sharedcomponent.NewMap[*Config, *anvilReceiver]()

func loadOrStore(cfg *Config, set receiver.Settings) (*sharedcomponent.Component[*anvilReceiver], error) {
	return receivers.LoadOrStore(cfg, func() (*anvilReceiver, error) {
		return newAnvilReceiver(cfg, set, clock.Real{})
	})
}
