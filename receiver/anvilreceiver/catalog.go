package anvilreceiver // import "github.com/anvil/anvilcol/receiver/anvilreceiver"

import "math"

// catalog is the built-in metric catalog (`default_metrics: true`): ADR-008's
// metrics bound to the events Anvil really fires, plus the counters its alerts
// and business questions need. High-cardinality metadata (labeler_id,
// sample_id, assignment_id) is never a tag.
func catalog() []MetricConfig {
	return []MetricConfig{
		// Counters.
		{Name: "anvil.queue.created.count", Type: TypeCounter,
			Description: "Queues created."},
		{Name: "anvil.label.submit.count", Type: TypeCounter, Event: "anvil.label.submit.stop",
			Tags: []string{"queue_id", "schema_version_id"}, Description: "Labels submitted."},
		{Name: "anvil.label.validation_failed.count", Type: TypeCounter,
			Tags: []string{"schema_version_id"}, Description: "Label submissions that failed schema validation."},
		{Name: "anvil.label.submit.exception.count", Type: TypeCounter, Event: "anvil.label.submit.exception",
			Tags: []string{"queue_id"}, Description: "Label submissions that raised."},
		{Name: "anvil.assignment.dispatch.exception.count", Type: TypeCounter, Event: "anvil.assignment.dispatch.exception",
			Tags: []string{"policy_type"}, Description: "Assignment dispatches that raised."},
		{Name: "anvil.export.generate.exception.count", Type: TypeCounter, Event: "anvil.export.generate.exception",
			Tags: []string{"format"}, Description: "Dataset exports that raised."},
		{Name: "anvil.auth.login_success.count", Type: TypeCounter,
			Tags: []string{"provider"}, Description: "Successful logins (the denominator of the login failure ratio)."},
		{Name: "anvil.auth.login_failed.count", Type: TypeCounter,
			Tags: []string{"provider", "reason"}, Description: "Failed logins."},
		{Name: "anvil.auth.access_denied.count", Type: TypeCounter,
			Tags: []string{"action", "reason"}, Description: "Denied accesses."},
		{Name: "anvil.policy.requeue.count", Type: TypeCounter,
			Tags: []string{"reason"}, Description: "Assignments requeued by a policy."},
		{Name: "anvil.agreement.low_score.count", Type: TypeCounter,
			Tags: []string{"dimension"}, Description: "Inter-rater agreement scores below threshold."},
		{Name: "anvil.export.pii_detected.count", Type: TypeCounter,
			Tags: []string{"pattern"}, Description: "PII detections in dataset exports."},

		// A sum: anvil.assignment.timed_out fires once per sweep with the number
		// of timed-out assignments in `count`; counting events would count sweeps.
		{Name: "anvil.assignment.timed_out.count", Type: TypeSum, Monotonic: true,
			Tags: []string{"queue_id"}, Description: "Assignments timed out (sum of the sweep's count)."},

		// Distributions of :telemetry.span durations, read from the `...stop` event.
		{Name: "anvil.assignment.dispatch.duration", Type: TypeDistribution, Event: "anvil.assignment.dispatch.stop",
			Measurement: "duration", Unit: "ms", Buckets: []float64{10, 50, 100, 250, 500, 1000},
			Tags: []string{"policy_type"}, Description: "Time to dispatch an assignment."},
		{Name: "anvil.label.submit.duration", Type: TypeDistribution, Event: "anvil.label.submit.stop",
			Measurement: "duration", Unit: "ms", Buckets: []float64{25, 50, 100, 250, 500},
			Tags: []string{"queue_id"}, Description: "Time to submit a label."},
		{Name: "anvil.agreement.compute.duration", Type: TypeDistribution, Event: "anvil.agreement.compute.stop",
			Measurement: "duration", Unit: "ms", Buckets: []float64{10, 25, 50, 100, 250, 500},
			Tags: []string{"metric"}, Description: "Time to compute inter-rater agreement."},
		{Name: "anvil.export.generate.duration", Type: TypeDistribution, Event: "anvil.export.generate.stop",
			Measurement: "duration", Unit: "s", Buckets: []float64{1, 5, 10, 30, 60, 300},
			Tags: []string{"format"}, Description: "Time to generate a dataset export."},
		{Name: "anvil.policy.select_assignment.duration", Type: TypeDistribution, Event: "anvil.policy.select_assignment.stop",
			Measurement: "duration", Unit: "ms", Buckets: []float64{1, 5, 10, 25, 50, 100, 250},
			Tags: []string{"policy_type"}, Description: "Time for an assignment policy to select the next assignment."},
		// Low agreement scores as a histogram: aggregatable over nodes (the
		// summary's quantiles are not) and with a bucket that ends just below
		// ADR-008's alert threshold 0.4, so a Prometheus rule can count exactly
		// the scores the alert processor's `low_agreement` (value < 0.4) fires on.
		{Name: "anvil.agreement.low_score.distribution", Type: TypeDistribution, Event: "anvil.agreement.low_score",
			Measurement: "value", Buckets: []float64{0.1, 0.2, 0.3, lowScoreBelow04, 0.5, 0.6, 0.7, 0.8, 0.9, 1},
			Tags: []string{"dimension"}, Description: "Distribution of low inter-rater agreement scores."},

		// Summary of agreement scores below threshold.
		{Name: "anvil.agreement.low_score.value", Type: TypeSummary,
			Tags: []string{"dimension"}, Description: "Low inter-rater agreement scores."},

		// Last value per export, as ADR-008 defines it. progress_pct is metadata
		// in ADR-008: read there. A finished export's series is forgotten after
		// series_ttl.
		//
		// ADR-008's anvil.queue.active_labelers.count is not here: it was bound
		// to an anvil.queue.active_labelers event Anvil never emits, and no event
		// of the catalog carries the number of active labelers (counting distinct
		// labeler_id values would make a high-cardinality key a tag). Anvil can
		// emit such a periodic event and add the metric under `metrics:`.
		{Name: "anvil.export.progress.progress_pct", Type: TypeLastValue, Unit: "%",
			Tags: []string{"export_id"}, Description: "Progress of a dataset export."},
	}
}

// lowScoreBelow04 is the largest float64 below 0.4. Bucket upper bounds are
// inclusive, so the bucket ending there holds exactly the scores < 0.4
// (low_agreement's condition); Prometheus shows it as le="0.39999999999999997".
var lowScoreBelow04 = math.Nextafter(0.4, 0)

// effectiveMetrics merges the catalog (when enabled) with the user's
// definitions: a user definition with a catalog name replaces it in place,
// others are appended in order.
func (cfg *Config) effectiveMetrics() []MetricConfig {
	var out []MetricConfig
	if cfg.DefaultMetrics {
		out = catalog()
	}
	index := make(map[string]int, len(out))
	for i := range out {
		index[out[i].Name] = i
	}
	for _, m := range cfg.Metrics {
		if i, ok := index[m.Name]; ok {
			out[i] = m
			continue
		}
		index[m.Name] = len(out)
		out = append(out, m)
	}
	return out
}
