package anvilreceiver // import "github.com/anvil/anvilcol/receiver/anvilreceiver"

import (
	"fmt"
	"slices"

	"github.com/anvil/anvilcol/contract"
)

// catalog is the built-in metric catalog (`default_metrics: true`), read from
// the event contract (contract/events.json, its `metrics`): ADR-008's metrics
// bound to the events Anvil really fires, plus the counters its alerts and
// business questions need. The contract's tests check that every tag is a
// metadata key its event carries on the wire and that no high-cardinality key
// (labeler_id, sample_id, assignment_id) is a tag.
//
// The contract is embedded and parsed once; Config.Validate reports a contract
// that does not parse or names an unknown metric type (loadCatalog), so
// catalog only panics on a build that skipped it. Every call returns fresh
// slices: callers may modify them.
func catalog() []MetricConfig {
	out, err := loadCatalog()
	if err != nil {
		panic(err)
	}
	return out
}

// loadCatalog is catalog, returning an error for a contract that does not
// parse or a metric whose type is unknown.
func loadCatalog() ([]MetricConfig, error) {
	c, err := contract.Load()
	if err != nil {
		return nil, err
	}
	out := make([]MetricConfig, len(c.Metrics))
	for i, m := range c.Metrics {
		typ, err := parseMetricType(m.Type)
		if err != nil {
			return nil, fmt.Errorf("contract/events.json: metrics[%d] (%s): type: %w", i, m.Name, err)
		}
		out[i] = MetricConfig{
			Name: m.Name, Type: typ, Event: m.Event, Measurement: m.Measurement, Unit: m.Unit,
			Description: m.Description, Tags: slices.Clone(m.Tags), Buckets: slices.Clone(m.Buckets),
			Monotonic: m.Monotonic,
		}
	}
	return out, nil
}

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
