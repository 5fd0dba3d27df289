//go:generate go tool mdatagen metadata.yaml

// Package foundationexporter exports metrics to Foundation, the central metrics
// ingestion service, as JSON records over HTTP: POST {endpoint}/v1/metrics with
// {"metrics": [record, ...]}. See README.md for the record format.
package foundationexporter // import "github.com/anvil/anvilcol/exporter/foundationexporter"
