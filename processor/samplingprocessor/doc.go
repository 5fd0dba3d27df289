//go:generate go tool mdatagen metadata.yaml

// Package samplingprocessor implements the `sampling` processor: per-event
// sampling rules for event log records and spans, decided consistently on the
// trace id in the OpenTelemetry way (see README.md).
package samplingprocessor // import "github.com/anvil/anvilcol/processor/samplingprocessor"
