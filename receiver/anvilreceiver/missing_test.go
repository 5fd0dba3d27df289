package anvilreceiver

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/anvil/anvilcol/internal/ratelog"
	"github.com/anvil/anvilcol/receiver/anvilreceiver/internal/metadatatest"
)

const missingMetric = "otelcol_receiver_anvil_events_missing_attribute"

func missing(event, attr string, n int64) metricdata.DataPoint[int64] {
	return metricdata.DataPoint[int64]{
		Attributes: attribute.NewSet(attribute.String("event", event), attribute.String("attribute", attr)), Value: n,
	}
}

// A client that does not merge a span's start metadata into its stop event:
// the stop events are accepted and aggregated, their series lack queue_id,
// and each is counted once as lacking queue_id (though two catalog metrics,
// anvil.label.submit.count and anvil.label.submit.duration, are tagged by it).
// A merged stop event counts nothing.
func TestStopEventWithoutStartMetadataIsCountedAsMissingAttribute(t *testing.T) {
	tr := startTestReceiver(t, nil)
	core, logged := observer.New(zap.WarnLevel)
	tr.r.errlog = ratelog.New(zap.New(core), 0)

	a := postJSON(t, tr.url, `[
		{"name": "anvil.label.submit.start", "measurements": {"monotonic_time": 1, "system_time": 1},
		 "metadata": {"queue_id": "q-1", "labeler_id": "u-1", "assignment_id": "a-1"}},
		{"name": "anvil.label.submit.stop", "measurements": {"duration": 30000000},
		 "metadata": {"schema_version_id": "sv-1", "telemetry_span_context": "#Reference<0.1.2.3>"}},
		{"name": "anvil.label.submit.stop", "measurements": {"duration": 60000000},
		 "metadata": {"schema_version_id": "sv-1"}}]`)
	require.Equal(t, http.StatusOK, a.code, a.raw)
	assert.Equal(t, response{Accepted: 3, Errors: []eventError{}}, a.resp)

	// Merged: counts nothing.
	a = postJSON(t, tr.url, `[{"name": "anvil.label.submit.stop", "measurements": {"duration": 10000000},
		"metadata": {"schema_version_id": "sv-1", "queue_id": "q-1", "labeler_id": "u-1", "assignment_id": "a-1"}}]`)
	require.Equal(t, http.StatusOK, a.code, a.raw)

	md := tr.flush()
	require.Len(t, md, 1)
	p := points(md[0])
	assert.Equal(t, int64(2), p["anvil.label.submit.count{schema_version_id=sv-1}"].intValue, "accepted, the series lacks queue_id")
	assert.Equal(t, int64(1), p["anvil.label.submit.count{queue_id=q-1,schema_version_id=sv-1}"].intValue)
	assert.Equal(t, uint64(2), p["anvil.label.submit.duration{}"].count)
	assert.Equal(t, uint64(1), p["anvil.label.submit.duration{queue_id=q-1}"].count)

	metadatatest.AssertEqualReceiverAnvilEventsMissingAttribute(t, tr.tel, []metricdata.DataPoint[int64]{
		missing("anvil.label.submit.stop", "queue_id", 2),
	}, metricdatatest.IgnoreTimestamp(), metricdatatest.IgnoreExemplars())

	require.Equal(t, 1, logged.Len())
	fields := logged.All()[0].ContextMap()
	assert.Equal(t, int64(2), fields["count"])
	assert.Equal(t, "anvil.label.submit.stop", fields["event"])
	assert.Equal(t, "queue_id", fields["attribute"])

	// Logged at most once a minute; counted every time.
	require.Equal(t, http.StatusOK, postJSON(t, tr.url,
		`[{"name": "anvil.label.submit.stop", "measurements": {"duration": 1}, "metadata": {}}]`).code)
	assert.Equal(t, 1, logged.Len())
	metadatatest.AssertEqualReceiverAnvilEventsMissingAttribute(t, tr.tel, []metricdata.DataPoint[int64]{
		missing("anvil.label.submit.stop", "queue_id", 3),
		missing("anvil.label.submit.stop", "schema_version_id", 1),
	}, metricdatatest.IgnoreTimestamp(), metricdatatest.IgnoreExemplars())
}

// User definitions count as well; an event that lacks the measurement of a
// definition does not feed it, so that definition's tags are not counted.
func TestMissingAttributeOfUserDefinitions(t *testing.T) {
	tr := startTestReceiver(t, func(c *Config) {
		c.DefaultMetrics = false
		c.Metrics = []MetricConfig{
			{Name: "anvil.x.count", Type: TypeCounter, Tags: []string{"a", "b"}},
			{Name: "anvil.x.size", Type: TypeSum, Tags: []string{"c"}},
			{Name: "anvil.y.count", Type: TypeCounter, Tags: []string{"a"}},
		}
	})
	a := postJSON(t, tr.url, `[
		{"name": "anvil.x", "metadata": {"a": "1"}},
		{"name": "anvil.x", "metadata": {"b": "1"}},
		{"name": "anvil.x", "measurements": {"size": 3}, "metadata": {"a": "1", "b": "2"}},
		{"name": "anvil.y", "metadata": {}},
		{"name": "anvil.z", "metadata": {}}]`)
	require.Equal(t, http.StatusOK, a.code, a.raw)
	assert.Equal(t, 5, a.resp.Accepted)
	metadatatest.AssertEqualReceiverAnvilEventsMissingAttribute(t, tr.tel, []metricdata.DataPoint[int64]{
		missing("anvil.x", "b", 1),
		missing("anvil.x", "a", 1),
		missing("anvil.x", "c", 1),
		missing("anvil.y", "a", 1),
	}, metricdatatest.IgnoreTimestamp(), metricdatatest.IgnoreExemplars())
}

// A request the pipeline refused is not aggregated (a retry would count
// twice), so its missing attributes are not counted either; nor are they
// without a metrics pipeline.
func TestMissingAttributeCountedOnlyForAppliedRequests(t *testing.T) {
	body := `[{"name": "anvil.label.submit.stop", "measurements": {"duration": 1}, "metadata": {"schema_version_id": "sv-1"}}]`
	logs := &flakyLogs{}
	logs.fail.Store(true)
	tr := startTestReceiver(t, nil, consumers{logs: logs})
	require.Equal(t, http.StatusServiceUnavailable, postJSON(t, tr.url, body).code)
	_, err := tr.tel.GetMetric(missingMetric)
	assert.Error(t, err, "nothing counted")

	// The next, accepted request counts only its own events.
	logs.fail.Store(false)
	require.Equal(t, http.StatusOK, postJSON(t, tr.url, body).code)
	metadatatest.AssertEqualReceiverAnvilEventsMissingAttribute(t, tr.tel, []metricdata.DataPoint[int64]{
		missing("anvil.label.submit.stop", "queue_id", 1),
	}, metricdatatest.IgnoreTimestamp(), metricdatatest.IgnoreExemplars())
}

// Staging counts an event once per (event, tag) slot, and reset forgets the
// counts of a request that was not applied.
func TestStageCountsAnEventOncePerTag(t *testing.T) {
	a := newTestAggregator(t, false, 0, 100,
		MetricConfig{Name: "e.count", Type: TypeCounter, Tags: []string{"q", "r"}},
		MetricConfig{Name: "e.v", Type: TypeSum, Measurement: "v", Tags: []string{"r", "q"}},
		MetricConfig{Name: "f.count", Type: TypeCounter, Tags: []string{"q"}})
	require.Len(t, a.missing, 3, "(e, q), (e, r), (f, q)")
	var st stage
	events := []decodedEvent{ev("e", 1, map[string]any{}), ev("e", 1, map[string]any{"q": "x"}), ev("f", 1, map[string]any{})}
	for i := range events {
		a.stageEvent(&st, &events[i])
	}
	got := map[missingKey]int64{}
	for _, slot := range st.touched {
		got[a.missing[slot]] = st.missing[slot]
	}
	assert.Equal(t, map[missingKey]int64{{"e", "q"}: 1, {"e", "r"}: 2, {"f", "q"}: 1}, got)
	st.reset()
	assert.Empty(t, st.touched)
	for _, n := range st.missing {
		assert.Zero(t, n)
	}
}

// flakyLogs refuses logs (retryably) while fail is set.
type flakyLogs struct{ fail atomic.Bool }

func (*flakyLogs) Capabilities() consumer.Capabilities { return consumer.Capabilities{} }

func (f *flakyLogs) ConsumeLogs(context.Context, plog.Logs) error {
	if f.fail.Load() {
		return errors.New("busy")
	}
	return nil
}
