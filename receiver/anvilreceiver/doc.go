//go:generate go tool mdatagen metadata.yaml

// Package anvilreceiver receives Anvil's :telemetry events over HTTP (the v1
// wire protocol, POST /v1/events) and turns each into an OpenTelemetry event log
// record, a span (for `...stop` / `...exception` events) and aggregated metrics
// (by Telemetry.Metrics-like definitions). One HTTP server serves every
// pipeline that uses the receiver.
package anvilreceiver // import "github.com/anvil/anvilcol/receiver/anvilreceiver"
