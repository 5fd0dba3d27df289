package foundationexporter // import "github.com/anvil/anvilcol/exporter/foundationexporter"

import "go.opentelemetry.io/collector/pdata/pmetric"

// pointsFrom returns a copy of md holding only the data points whose ordinal
// (in walk order) is >= from: what is left to send after a retryable failure,
// so the retry does not resend what Foundation already acknowledged.
func pointsFrom(md pmetric.Metrics, from int) pmetric.Metrics {
	out := pmetric.NewMetrics()
	md.CopyTo(out)
	ord := 0
	keep := func() bool { k := ord >= from; ord++; return k }
	out.ResourceMetrics().RemoveIf(func(rm pmetric.ResourceMetrics) bool {
		rm.ScopeMetrics().RemoveIf(func(sm pmetric.ScopeMetrics) bool {
			sm.Metrics().RemoveIf(func(m pmetric.Metric) bool {
				switch m.Type() {
				case pmetric.MetricTypeGauge:
					m.Gauge().DataPoints().RemoveIf(func(pmetric.NumberDataPoint) bool { return !keep() })
					return m.Gauge().DataPoints().Len() == 0
				case pmetric.MetricTypeSum:
					m.Sum().DataPoints().RemoveIf(func(pmetric.NumberDataPoint) bool { return !keep() })
					return m.Sum().DataPoints().Len() == 0
				case pmetric.MetricTypeHistogram:
					m.Histogram().DataPoints().RemoveIf(func(pmetric.HistogramDataPoint) bool { return !keep() })
					return m.Histogram().DataPoints().Len() == 0
				case pmetric.MetricTypeExponentialHistogram:
					m.ExponentialHistogram().DataPoints().RemoveIf(func(pmetric.ExponentialHistogramDataPoint) bool { return !keep() })
					return m.ExponentialHistogram().DataPoints().Len() == 0
				case pmetric.MetricTypeSummary:
					m.Summary().DataPoints().RemoveIf(func(pmetric.SummaryDataPoint) bool { return !keep() })
					return m.Summary().DataPoints().Len() == 0
				}
				return true
			})
			return sm.Metrics().Len() == 0
		})
		return rm.ScopeMetrics().Len() == 0
	})
	return out
}
