//go:build e2e

package e2e

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/s2"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/anvil/anvilcol/internal/e2etest"
)

// TestDeployShippedPrometheusConfig runs Prometheus exactly as
// deploy/prometheus ships it (prometheus.yml, prometheus.args, the rules, the
// 15 s scrapes and 1 m evaluations), with only the target files and the
// remote_write url pointed at this test's fleet and intake: the scrape jobs
// find the gateways (honor_labels, anvilcol_replica), the raw retention is
// ADR-008's 7 days, and long-term storage gets the recording rules' series,
// with their values, and never a raw series.
func TestDeployShippedPrometheusConfig(t *testing.T) {
	root := e2etest.RepoRoot(t)
	src := filepath.Join(root, "deploy", "prometheus")
	f := newFleetEnv(t, nil) // the shipped zero_step hold (35s) for 15 s scrapes
	defer f.stopAll()
	agent := f.startAgent(t, "node-1", nil)
	longTerm := e2etest.NewIntake(t)

	// The shipped files, copied; the url and the target files are the
	// operator's part.
	dir := t.TempDir()
	cfg, err := os.ReadFile(filepath.Join(src, "prometheus.yml"))
	if err != nil {
		t.Fatal(err)
	}
	const shippedURL = "http://long-term-storage:19291/api/v1/receive"
	if !strings.Contains(string(cfg), shippedURL) {
		t.Fatalf("prometheus.yml has no remote_write url %s any more", shippedURL)
	}
	cfg = []byte(strings.Replace(string(cfg), shippedURL, longTerm.URL+"/api/v1/receive", 1))
	copyTo := func(name string, data []byte) {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	copyTo("prometheus.yml", cfg)
	rules, err := os.ReadFile(filepath.Join(src, "anvil-rules.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	copyTo("anvil-rules.yaml", rules)
	var exporter, telemetry []string
	for _, g := range f.gateways {
		exporter = append(exporter, fmt.Sprintf("%q", fmt.Sprintf("%s:%d", g.listenHost, g.promPort)))
		telemetry = append(telemetry, fmt.Sprintf("%q", fmt.Sprintf("%s:%d", g.listenHost, g.telemetry))) // ANVILCOL_LISTEN_HOST
	}
	for name, targets := range map[string][]string{
		"gateway-exporter": exporter,
		"gateway":          telemetry,
		"agent":            {fmt.Sprintf("%q", fmt.Sprintf("127.0.0.1:%d", agent.telemetry))},
		"alerting":         nil,
	} {
		if _, err := os.Stat(filepath.Join(src, "targets", name+".yml")); err != nil {
			t.Fatalf("deploy/prometheus/targets/%s.yml: %v", name, err)
		}
		copyTo(filepath.Join("targets", name+".yml"), []byte(fmt.Sprintf("- targets: [%s]\n", strings.Join(targets, ", "))))
	}
	args, err := os.ReadFile(filepath.Join(src, "prometheus.args"))
	if err != nil {
		t.Fatal(err)
	}
	prom := e2etest.StartPrometheusFile(t, filepath.Join(dir, "prometheus.yml"), strings.Fields(string(args))...)

	// Raw series: 7 days (and the size cap) as shipped.
	info, err := prom.RuntimeInfo()
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(info["storageRetention"]); got != "1w or 50GiB" { // Prometheus prints 7d as 1w
		t.Errorf("storageRetention %q, want ADR-008's raw 7d (or 50GB)", got)
	}

	if !postEvents(t, agent, nil, valuesRound(t, nil)) {
		t.Fatal("the agent did not accept the events")
	}
	// Every job finds its targets (the alerting pair has none here).
	up := map[string]float64{}
	e2etest.Eventually(t, 60*time.Second, func() bool {
		s, err := prom.Query(`sum by (job) (up)`)
		if err != nil {
			return false
		}
		clear(up)
		for _, x := range s {
			up[x.Metric["job"]] = x.Value
		}
		return up["anvilcol-gateway-exporter"] == 2 && up["anvilcol-gateway"] == 2 && up["anvilcol-agent"] == 1
	}, "every scrape job up: %v", up)

	// Long-term storage gets the aggregates (10 labels in the hour, 6 on q-1)
	// and nothing raw. The rule's first sample with the 6 may come from a
	// series only 15 s old, which one step's extrapolation can nearly double
	// (deploy/README.md, Extrapolation); one evaluation (1m) later the series
	// has lived at least 75 s, so its sample is 6 to 6*(75+15)/75.
	const q1 = `queue_id:anvil_label_submit_count:increase1h{queue_id="q-1"}`
	rule := regexp.MustCompile(`^[a-z_]+:[a-z0-9_]+:[a-z0-9_]+$`)
	var raw []string
	var q1Samples []float64
	e2etest.Eventually(t, 5*time.Minute, func() bool {
		raw, q1Samples = raw[:0], q1Samples[:0]
		for _, r := range longTerm.RequestsTo("/api/v1/receive") {
			series, err := decodeRemoteWrite(r.Body)
			if err != nil {
				t.Fatalf("remote write body: %v", err)
			}
			for _, s := range series {
				if !rule.MatchString(s.name) {
					raw = append(raw, s.name)
				}
				if s.name+"{"+s.labels+"}" != q1 {
					continue
				}
				for _, v := range s.values {
					if v >= 6 {
						q1Samples = append(q1Samples, v)
					}
				}
			}
		}
		return len(raw) > 0 || len(q1Samples) >= 2
	}, "long-term storage gets two evaluations of %s >= 6: %v", q1, q1Samples)
	if len(raw) > 0 {
		t.Errorf("raw series remote-written to long-term storage: %v", raw[:min(5, len(raw))])
	}
	if len(q1Samples) < 2 {
		t.Fatalf("long-term storage got %v of %s, want two evaluations >= 6", q1Samples, q1)
	}
	if v := q1Samples[len(q1Samples)-1]; v > 6*(75.0+15)/75 {
		t.Errorf("q-1's labels in the hour read %v in long-term storage one evaluation after the first 6 (all: %v), want 6 to 7.2", v, q1Samples)
	}
}

// remoteSeries is a remote-written series: name, the other labels (sorted
// by Prometheus, as name="value" joined by commas) and its samples' values.
type remoteSeries struct {
	name, labels string
	values       []float64
}

// decodeRemoteWrite reads a remote-write 1.0 body (snappy-compressed
// prometheus.WriteRequest: field 1 timeseries {1 labels {1 name, 2 value},
// 2 samples {1 value (double), 2 timestamp}}).
func decodeRemoteWrite(body []byte) ([]remoteSeries, error) {
	b, err := s2.Decode(nil, body)
	if err != nil {
		return nil, fmt.Errorf("snappy: %w", err)
	}
	var out []remoteSeries
	err = protoFields(b, func(num protowire.Number, v []byte) error {
		if num != 1 {
			return nil
		}
		var s remoteSeries
		var labels []string
		if err := protoFields(v, func(num protowire.Number, v []byte) error {
			switch num {
			case 1:
				var name, value string
				if err := protoFields(v, func(num protowire.Number, v []byte) error {
					if num == 1 {
						name = string(v)
					} else if num == 2 {
						value = string(v)
					}
					return nil
				}); err != nil {
					return err
				}
				if name == "__name__" {
					s.name = value
				} else {
					labels = append(labels, fmt.Sprintf("%s=%q", name, value))
				}
			case 2:
				return protoFields(v, func(num protowire.Number, v []byte) error {
					if num == 1 && len(v) == 8 {
						s.values = append(s.values, protowireDouble(v))
					}
					return nil
				})
			}
			return nil
		}); err != nil {
			return err
		}
		s.labels = strings.Join(labels, ",")
		out = append(out, s)
		return nil
	})
	return out, err
}

// protoFields calls f with each length-delimited field of a message, and
// with each fixed64 field's 8 bytes; varints are skipped.
func protoFields(b []byte, f func(protowire.Number, []byte) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		switch typ {
		case protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return protowire.ParseError(n)
			}
			if err := f(num, v); err != nil {
				return err
			}
			b = b[n:]
		case protowire.Fixed64Type:
			if len(b) < 8 {
				return fmt.Errorf("short fixed64")
			}
			if err := f(num, b[:8]); err != nil {
				return err
			}
			b = b[8:]
		default:
			n := protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return protowire.ParseError(n)
			}
			b = b[n:]
		}
	}
	return nil
}

func protowireDouble(b []byte) float64 {
	v, _ := protowire.ConsumeFixed64(b)
	return math.Float64frombits(v)
}
