package alertprocessor // import "github.com/anvil/anvilcol/processor/alertprocessor"

import (
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// metricRule is a rule on metric data points (`metric:`): each point, after
// cumulative differencing (series.go), goes into its group's window.
type metricRule struct {
	*rule
}

// observe adds one data point, with its point and resource attributes, at now.
func (r *metricRule) observe(o *obs, attrs, res pcommon.Map, now time.Time) {
	if g := r.groupFor(attrs, res); g != nil {
		r.addMetric(g, o, now)
	}
}
