package e2etest

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Scrape fetches a Prometheus text endpoint and returns its metric families by name.
func Scrape(t testing.TB, url string) (map[string]*dto.MetricFamily, error) {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scrape %s: HTTP %d", url, resp.StatusCode)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	return p.TextToMetricFamilies(resp.Body)
}

// Labels renders a metric's labels as "k=v,k=v" sorted by key, for assertions.
func Labels(m *dto.Metric) string {
	parts := make([]string, 0, len(m.GetLabel()))
	for _, l := range m.GetLabel() {
		parts = append(parts, l.GetName()+"="+l.GetValue())
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

// HasLabels reports whether m carries every label in want.
func HasLabels(m *dto.Metric, want map[string]string) bool {
	got := map[string]string{}
	for _, l := range m.GetLabel() {
		got[l.GetName()] = l.GetValue()
	}
	for k, v := range want {
		if got[k] != v {
			return false
		}
	}
	return true
}

// EnvPrometheus names the prometheus server binary; default `prometheus` on PATH.
const EnvPrometheus = "ANVILCOL_PROMETHEUS_BIN"

// PrometheusServer is a running Prometheus server (Debian's `prometheus`
// package; `.ci/run` installs it), storing into a temporary directory and
// listening on a free loopback port.
type PrometheusServer struct {
	// URL is the server's base URL, e.g. http://127.0.0.1:39123.
	URL string
	cmd *exec.Cmd
	out *syncBuffer
}

// StartPrometheus runs prometheus with config (a prometheus.yml) and waits
// until it is ready. It fails the test, never skips it, when the binary is
// missing. The server is stopped at the end of the test; its log is printed
// if the test failed.
func StartPrometheus(t testing.TB, config string) *PrometheusServer {
	t.Helper()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfg, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	return StartPrometheusFile(t, cfg)
}

// StartPrometheusFile runs prometheus with the config file cfg (relative
// paths in it are relative to its directory) and flags (e.g. a shipped
// retention), storing into a temporary directory, as StartPrometheus.
func StartPrometheusFile(t testing.TB, cfg string, flags ...string) *PrometheusServer {
	t.Helper()
	bin := os.Getenv(EnvPrometheus)
	if bin == "" {
		bin = "prometheus"
	}
	path, err := exec.LookPath(bin)
	if err != nil {
		t.Fatalf("e2etest: prometheus server %q not found (%v): install Debian's `prometheus` package (as .ci/run does) or set %s", bin, err, EnvPrometheus)
	}
	addr := "127.0.0.1:" + strconv.Itoa(FreePort(t))
	p := &PrometheusServer{URL: "http://" + addr, out: &syncBuffer{}}
	p.cmd = exec.Command(path, append([]string{
		"--config.file=" + cfg,
		"--storage.tsdb.path=" + filepath.Join(t.TempDir(), "data"),
		"--web.listen-address=" + addr,
		"--log.level=info"}, flags...)...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("e2etest: start %s: %v", path, err)
	}
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = p.cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("prometheus output:\n%s", p.out.String())
		}
	})
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-done:
			t.Fatalf("e2etest: prometheus exited before becoming ready:\n%s", p.out.String())
		default:
		}
		if resp, err := client.Get(p.URL + "/-/ready"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("e2etest: prometheus not ready on %s after 60s:\n%s", p.URL, p.out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// RuntimeInfo returns /api/v1/status/runtimeinfo's data (storageRetention,
// ...).
func (p *PrometheusServer) RuntimeInfo() (map[string]any, error) {
	var body struct {
		Status string         `json:"status"`
		Data   map[string]any `json:"data"`
	}
	if err := p.get("/api/v1/status/runtimeinfo", &body); err != nil {
		return nil, err
	}
	if body.Status != "success" {
		return nil, fmt.Errorf("runtimeinfo: status %q", body.Status)
	}
	return body.Data, nil
}

// PromSample is one series of an instant query's answer.
type PromSample struct {
	Metric map[string]string
	Value  float64
}

// Query runs an instant query (/api/v1/query) and returns its samples
// (vector or scalar answers); an error names what Prometheus refused.
func (p *PrometheusServer) Query(expr string) ([]PromSample, error) {
	return p.query(expr, "")
}

// QueryAt runs an instant query evaluated at time at (millisecond precision).
func (p *PrometheusServer) QueryAt(expr string, at time.Time) ([]PromSample, error) {
	return p.query(expr, "&time="+strconv.FormatFloat(float64(at.UnixMilli())/1000, 'f', 3, 64))
}

func (p *PrometheusServer) query(expr, params string) ([]PromSample, error) {
	var body struct {
		Status    string `json:"status"`
		Error     string `json:"error"`
		ErrorType string `json:"errorType"`
		Data      struct {
			ResultType string          `json:"resultType"`
			Result     json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := p.get("/api/v1/query?query="+url.QueryEscape(expr)+params, &body); err != nil {
		return nil, err
	}
	if body.Status != "success" {
		return nil, fmt.Errorf("query %q: %s: %s", expr, body.ErrorType, body.Error)
	}
	var out []PromSample
	switch body.Data.ResultType {
	case "vector":
		var vec []struct {
			Metric map[string]string `json:"metric"`
			Value  [2]any            `json:"value"`
		}
		if err := json.Unmarshal(body.Data.Result, &vec); err != nil {
			return nil, err
		}
		for _, s := range vec {
			out = append(out, PromSample{Metric: s.Metric, Value: promFloat(s.Value[1])})
		}
	case "scalar":
		var v [2]any
		if err := json.Unmarshal(body.Data.Result, &v); err != nil {
			return nil, err
		}
		out = append(out, PromSample{Value: promFloat(v[1])})
	default:
		return nil, fmt.Errorf("query %q: unexpected result type %q", expr, body.Data.ResultType)
	}
	return out, nil
}

// PromAlert is one alert of /api/v1/alerts.
type PromAlert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	State       string            `json:"state"`
	Value       string            `json:"value"`
}

// Alerts returns the server's active (pending and firing) alerts.
func (p *PrometheusServer) Alerts() ([]PromAlert, error) {
	var body struct {
		Data struct {
			Alerts []PromAlert `json:"alerts"`
		} `json:"data"`
	}
	err := p.get("/api/v1/alerts", &body)
	return body.Data.Alerts, err
}

// Output returns what the server logged so far.
func (p *PrometheusServer) Output() string { return p.out.String() }

func (p *PrometheusServer) get(path string, v any) error {
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get(p.URL + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("GET %s: HTTP %d: %v: %.200s", path, resp.StatusCode, err, raw)
	}
	return nil
}

// promFloat reads a sample value, which the API sends as a string ("NaN" too).
func promFloat(v any) float64 {
	s, _ := v.(string)
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return math.NaN()
	}
	return f
}
