//go:generate go tool mdatagen metadata.yaml

// Package cardinalityguardprocessor bounds metric cardinality without losing
// totals: it drops high-cardinality data point attributes (or keeps only an
// allowlist), caps the series of each metric (folding the rest into one
// otel.metric.overflow=true series), and re-aggregates every group of points
// that collapses into one output series, keeping cumulative series correct
// with per-input-series state.
package cardinalityguardprocessor // import "github.com/anvil/anvilcol/processor/cardinalityguardprocessor"
