//go:generate go tool mdatagen metadata.yaml

// Package alertprocessor evaluates threshold rules on the metrics, logs and
// traces flowing through a pipeline and notifies Slack, PagerDuty,
// Alertmanager, webhooks or the log. Data passes through unchanged; one rule
// engine per component id is shared by every pipeline that uses it.
package alertprocessor // import "github.com/anvil/anvilcol/processor/alertprocessor"
