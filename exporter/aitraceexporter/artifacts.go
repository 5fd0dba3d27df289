package aitraceexporter // import "github.com/anvil/anvilcol/exporter/aitraceexporter"

import (
	"math"
	"strconv"
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
)

// Keys read from an artifact event: attributes (the event's metadata) first,
// then the body (its measurements).
const (
	keyExportID        = "export_id"
	keyQueueID         = "queue_id"
	keySchemaVersionID = "schema_version_id"
	keyRowCount        = "row_count"
	keyFileSizeBytes   = "file_size_bytes"
	keySHA256          = "sha256"
	keyFormat          = "format"
)

// Drop reasons (telemetry attribute values).
const (
	reasonMissingExportID = "missing_export_id"
	reasonMissingQueueID  = "missing_queue_id"
	reasonRejected        = "rejected"
)

// artifact is the body of POST /v1/artifacts. Optional fields the event did
// not carry are omitted, never invented.
type artifact struct {
	Type       string           `json:"type"`
	Name       string           `json:"name"`
	Version    string           `json:"version,omitempty"`
	Metadata   artifactMetadata `json:"metadata"`
	Lineage    lineage          `json:"lineage"`
	TraceID    string           `json:"trace_id,omitempty"`
	SpanID     string           `json:"span_id,omitempty"`
	OccurredAt string           `json:"occurred_at,omitempty"`
}

type artifactMetadata struct {
	ExportID      string `json:"export_id"`
	QueueID       string `json:"queue_id"`
	RowCount      *int64 `json:"row_count,omitempty"`
	FileSizeBytes *int64 `json:"file_size_bytes,omitempty"`
	SHA256        string `json:"sha256,omitempty"`
	Format        string `json:"format,omitempty"`
}

type lineage struct {
	Upstream []upstream `json:"upstream"`
}

type upstream struct {
	Type string `json:"type"`
	ID   string `json:"id"`
}

// toArtifact builds the artifact an event record registers; reason is set
// (and the artifact nil) when a required field is missing.
func toArtifact(lr plog.LogRecord) (a *artifact, reason string) {
	hasBody := lr.Body().Type() == pcommon.ValueTypeMap
	body := lr.Body().Map()
	get := func(k string) (pcommon.Value, bool) {
		if v, ok := lr.Attributes().Get(k); ok {
			return v, true
		}
		if hasBody {
			return body.Get(k)
		}
		return pcommon.Value{}, false
	}
	str := func(k string) string {
		if v, ok := get(k); ok {
			return strings.TrimSpace(v.AsString())
		}
		return ""
	}
	exportID, queueID := str(keyExportID), str(keyQueueID)
	if exportID == "" {
		return nil, reasonMissingExportID
	}
	if queueID == "" {
		return nil, reasonMissingQueueID
	}
	schema := str(keySchemaVersionID)
	a = &artifact{
		Type:    "dataset",
		Name:    "anvil_export_" + exportID,
		Version: schema,
		Metadata: artifactMetadata{
			ExportID: exportID,
			QueueID:  queueID,
			SHA256:   str(keySHA256),
			Format:   str(keyFormat),
		},
		Lineage: lineage{Upstream: []upstream{{Type: "queue", ID: queueID}}},
	}
	if v, ok := get(keyRowCount); ok {
		a.Metadata.RowCount = asInt(v)
	}
	if v, ok := get(keyFileSizeBytes); ok {
		a.Metadata.FileSizeBytes = asInt(v)
	}
	if schema != "" {
		a.Lineage.Upstream = append(a.Lineage.Upstream, upstream{Type: "schema_version", ID: schema})
	}
	if id := lr.TraceID(); !id.IsEmpty() {
		a.TraceID = id.String()
	}
	if id := lr.SpanID(); !id.IsEmpty() {
		a.SpanID = id.String()
	}
	ts := lr.Timestamp()
	if ts == 0 {
		ts = lr.ObservedTimestamp()
	}
	if ts != 0 {
		a.OccurredAt = formatTime(ts)
	}
	return a, ""
}

// asInt reads a count: an int, an integral double or a decimal string; nil
// (the field is omitted) for anything else.
func asInt(v pcommon.Value) *int64 {
	var n int64
	switch v.Type() {
	case pcommon.ValueTypeInt:
		n = v.Int()
	case pcommon.ValueTypeDouble:
		f := v.Double()
		if f != math.Trunc(f) || math.IsInf(f, 0) || math.Abs(f) > 1<<53 {
			return nil
		}
		n = int64(f)
	case pcommon.ValueTypeStr:
		p, err := strconv.ParseInt(strings.TrimSpace(v.Str()), 10, 64)
		if err != nil {
			return nil
		}
		n = p
	default:
		return nil
	}
	return &n
}

// rfc3339Nano is RFC 3339 with all nine fractional digits, always UTC.
const rfc3339Nano = "2006-01-02T15:04:05.000000000Z07:00"

func formatTime(ts pcommon.Timestamp) string {
	return ts.AsTime().UTC().Format(rfc3339Nano)
}
