package nodeidentityprocessor // import "github.com/anvil/anvilcol/processor/nodeidentityprocessor"

import (
	"context"
	"fmt"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// The resource attributes this processor fills in (OpenTelemetry semantic
// conventions).
const (
	attrHostName          = "host.name"
	attrServiceInstanceID = "service.instance.id"
	attrServiceName       = "service.name"
)

// identity holds the resolved names; it is immutable, so one value serves
// every pipeline and goroutine.
type identity struct {
	nodeName    string
	serviceName string
}

// newIdentity resolves cfg; hostname (os.Hostname outside tests) is asked
// only when node_name is empty.
func newIdentity(cfg *Config, hostname func() (string, error)) (identity, error) {
	id := identity{nodeName: cfg.NodeName, serviceName: cfg.ServiceName}
	if id.nodeName == "" {
		h, err := hostname()
		if err != nil {
			return identity{}, fmt.Errorf("node_name is empty and the machine's host name cannot be read: %w", err)
		}
		if h == "" {
			return identity{}, fmt.Errorf("node_name is empty and the machine's host name is empty: set node_name")
		}
		id.nodeName = h
	}
	return id, nil
}

// apply fills the three attributes where absent, in order, so a host.name the
// client sent also becomes its service.instance.id.
func (id identity) apply(res pcommon.Resource) {
	attrs := res.Attributes()
	host := id.nodeName
	if v, ok := attrs.Get(attrHostName); ok {
		host = v.AsString()
	} else {
		attrs.PutStr(attrHostName, host)
	}
	if _, ok := attrs.Get(attrServiceInstanceID); !ok {
		attrs.PutStr(attrServiceInstanceID, host)
	}
	if id.serviceName != "" {
		if _, ok := attrs.Get(attrServiceName); !ok {
			attrs.PutStr(attrServiceName, id.serviceName)
		}
	}
}

func (id identity) processLogs(_ context.Context, ld plog.Logs) (plog.Logs, error) {
	rls := ld.ResourceLogs()
	for i := 0; i < rls.Len(); i++ {
		id.apply(rls.At(i).Resource())
	}
	return ld, nil
}

func (id identity) processMetrics(_ context.Context, md pmetric.Metrics) (pmetric.Metrics, error) {
	rms := md.ResourceMetrics()
	for i := 0; i < rms.Len(); i++ {
		id.apply(rms.At(i).Resource())
	}
	return md, nil
}

func (id identity) processTraces(_ context.Context, td ptrace.Traces) (ptrace.Traces, error) {
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		id.apply(rss.At(i).Resource())
	}
	return td, nil
}
