//go:generate go tool mdatagen metadata.yaml

// Package aitraceexporter exports to AITrace, the ML-pipeline lineage and
// tracing service: finished dataset exports (log events) are registered as
// dataset artifacts with their upstream queue and schema version, and traces
// are sent grouped by trace id. See README.md for the request formats.
package aitraceexporter // import "github.com/anvil/anvilcol/exporter/aitraceexporter"
