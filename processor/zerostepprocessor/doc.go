//go:generate go tool mdatagen metadata.yaml

// Package zerostepprocessor implements the `zero_step` processor: in front of
// a scraped exporter (prometheus), a new cumulative series is shown at zero
// for a while before its first value, so that a scraper sees the step from 0
// and Prometheus' increase() and rate() count the series' first increments
// (see README.md).
package zerostepprocessor // import "github.com/anvil/anvilcol/processor/zerostepprocessor"
