//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/anvil/anvilcol/internal/e2etest"
)

// manifest is the part of builder-config.yaml the tests read.
type manifest struct {
	Dist struct {
		Name    string `yaml:"name"`
		Version string `yaml:"version"`
	} `yaml:"dist"`
	Receivers  []module `yaml:"receivers"`
	Processors []module `yaml:"processors"`
	Exporters  []module `yaml:"exporters"`
	Extensions []module `yaml:"extensions"`
	Providers  []module `yaml:"providers"`
}

type module struct {
	GoMod  string `yaml:"gomod"`
	Import string `yaml:"import"`
}

func readManifest(t *testing.T) manifest {
	t.Helper()
	return readManifestFile(t, "builder-config.yaml")
}

// readManifestFile reads builder-config.yaml or builder-agent-config.yaml.
func readManifestFile(t *testing.T, name string) manifest {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(e2etest.RepoRoot(t), name))
	if err != nil {
		t.Fatal(err)
	}
	var m manifest
	if err := yaml.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// componentsOutput is what `anvilcol components` prints.
type componentsOutput struct {
	BuildInfo struct {
		Command string `yaml:"command"`
		Version string `yaml:"version"`
	} `yaml:"buildinfo"`
	Receivers  []listed `yaml:"receivers"`
	Processors []listed `yaml:"processors"`
	Exporters  []listed `yaml:"exporters"`
	Extensions []listed `yaml:"extensions"`
	Providers  []listed `yaml:"providers"`
}

type listed struct {
	Name   string `yaml:"name"`
	Module string `yaml:"module"`
	Scheme string `yaml:"scheme"`
}

func TestComponentsListsEveryManifestComponent(t *testing.T) {
	got := checkComponents(t, e2etest.Binary(t), readManifest(t))
	// The stock component types the distribution promises, by name.
	names := func(ls []listed) map[string]bool {
		s := map[string]bool{}
		for _, l := range ls {
			s[l.Name] = true
		}
		return s
	}
	for kind, want := range map[string]struct {
		have  []listed
		names []string
	}{
		"receivers":  {got.Receivers, []string{"otlp", "statsd"}},
		"processors": {got.Processors, []string{"memory_limiter", "batch", "probabilistic_sampler"}},
		"exporters":  {got.Exporters, []string{"otlp_grpc", "otlp_http", "debug", "datadog", "prometheus"}},
		"extensions": {got.Extensions, []string{"file_storage", "log_storage", "health_check", "bearertokenauth", "zpages", "pprof"}},
		"providers":  {got.Providers, []string{}},
	} {
		have := names(want.have)
		for _, n := range want.names {
			if !have[n] {
				t.Errorf("%s: %q not listed by `anvilcol components`", kind, n)
			}
		}
	}
	schemes := map[string]bool{}
	for _, p := range got.Providers {
		schemes[p.Scheme] = true
	}
	for _, s := range []string{"env", "file", "yaml"} {
		if !schemes[s] {
			t.Errorf("confmap provider %q missing (have %v)", s, schemes)
		}
	}
}

// checkComponents runs `<bin> components` and checks that it lists exactly
// the manifest's modules; it returns what was listed.
func checkComponents(t *testing.T, bin string, m manifest) componentsOutput {
	t.Helper()
	out, err := e2etest.RunBinary(t, bin, nil, "components")
	if err != nil {
		t.Fatalf("%s components: %v\n%s", bin, err, out)
	}
	var got componentsOutput
	if err := yaml.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("parse components output: %v\n%s", err, out)
	}
	check := func(kind string, want []module, have []listed) {
		// Each manifest entry must be listed once, by module. Custom components
		// all report the root module; some contrib components report their
		// parent module (file_storage says .../extension/storage), so a listed
		// module may be a path prefix of the manifest's.
		used := make([]bool, len(have))
		for _, w := range want {
			mod := strings.Fields(w.GoMod)[0]
			found := false
			for i, l := range have {
				lm := strings.Fields(l.Module)[0]
				if !used[i] && (lm == mod || strings.HasPrefix(mod, lm+"/")) {
					used[i], found = true, true
					break
				}
			}
			if !found {
				t.Errorf("%s: manifest module %s is not listed by `%s components`", kind, mod, m.Dist.Name)
			}
		}
		if len(have) != len(want) {
			t.Errorf("%s: manifest has %d, `%s components` lists %d", kind, len(want), m.Dist.Name, len(have))
		}
	}
	check("receivers", m.Receivers, got.Receivers)
	check("processors", m.Processors, got.Processors)
	check("exporters", m.Exporters, got.Exporters)
	check("extensions", m.Extensions, got.Extensions)
	check("providers", m.Providers, got.Providers)
	return got
}

// The agent distribution lists what its manifest names, every entry of that
// manifest is in the full one (so any agent config also runs on bin/anvilcol),
// and it leaves out what only gateways and the alerting tier run.
func TestAgentDistributionIsASubsetOfTheFullOne(t *testing.T) {
	agent, full := readManifestFile(t, "builder-agent-config.yaml"), readManifest(t)
	if agent.Dist.Version != full.Dist.Version {
		t.Errorf("agent manifest version %q, full %q", agent.Dist.Version, full.Dist.Version)
	}
	in := func(want module, all []module) bool {
		for _, m := range all {
			if m == want {
				return true
			}
		}
		return false
	}
	for kind, pair := range map[string][2][]module{
		"receivers":  {agent.Receivers, full.Receivers},
		"processors": {agent.Processors, full.Processors},
		"exporters":  {agent.Exporters, full.Exporters},
		"extensions": {agent.Extensions, full.Extensions},
		"providers":  {agent.Providers, full.Providers},
	} {
		for _, m := range pair[0] {
			if !in(m, pair[1]) {
				t.Errorf("%s: agent manifest entry %+v is not in builder-config.yaml at the same version", kind, m)
			}
		}
	}
	got := checkComponents(t, e2etest.AgentBinary(t), agent)
	for _, l := range got.Exporters {
		switch l.Name {
		case "datadog", "prometheus", "foundation", "aitrace":
			t.Errorf("the agent distribution links the %s exporter, which only gateways use", l.Name)
		}
	}
	for _, l := range got.Processors {
		if l.Name == "alert" {
			t.Errorf("the agent distribution links the alert processor, which only the alerting tier uses")
		}
	}
	out, err := e2etest.RunBinary(t, e2etest.AgentBinary(t), nil, "--version")
	if want := "anvilcol-agent version " + agent.Dist.Version; err != nil || strings.TrimSpace(out) != want {
		t.Errorf("anvilcol-agent --version printed %q (%v), want %q", strings.TrimSpace(out), err, want)
	}
}

func TestVersionPrintsManifestVersion(t *testing.T) {
	out, err := e2etest.Run(t, nil, "--version")
	if err != nil {
		t.Fatalf("anvilcol --version: %v\n%s", err, out)
	}
	want := "anvilcol version " + readManifest(t).Dist.Version
	if strings.TrimSpace(out) != want {
		t.Fatalf("--version printed %q, want %q", strings.TrimSpace(out), want)
	}
}

// envVarsRead returns the ${env:NAME...} references of a config file.
func envVarsRead(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`\$\{env:([A-Z0-9_]+)`)
	seen := map[string]bool{}
	var out []string
	for _, m := range re.FindAllStringSubmatch(string(b), -1) {
		if !seen[m[1]] {
			seen[m[1]] = true
			out = append(out, m[1])
		}
	}
	return out
}

func TestShippedConfigsValidateAndDocumentTheirEnvironment(t *testing.T) {
	// Values for the variables the configs need; everything else takes its default.
	env := map[string]string{
		"ANVILCOL_GATEWAY_ENDPOINT":    "gateway.example:4317",
		"ANVILCOL_GATEWAY_TOKEN":       "secret",
		"ANVILCOL_TLS_CERT_FILE":       "/etc/anvilcol/tls.crt",
		"ANVILCOL_TLS_KEY_FILE":        "/etc/anvilcol/tls.key",
		"ANVILCOL_TRACING_ENDPOINT":    "tracing.example:4317",
		"ANVILCOL_STORAGE_DIR":         t.TempDir(),
		"DD_API_KEY":                   "0123456789abcdef0123456789abcdef",
		"ANVILCOL_FOUNDATION_ENDPOINT": "https://foundation.example",
		"ANVILCOL_FOUNDATION_TOKEN":    "f-secret",
		"ANVILCOL_AITRACE_ENDPOINT":    "https://aitrace.example",
		"ANVILCOL_AITRACE_TOKEN":       "a-secret",
		"ANVILCOL_ALERTING_TOKEN":      "al-secret",
		"ANVILCOL_ALERTING_ENDPOINT_0": "alerting-0.example:4317",
		"ANVILCOL_ALERTING_ENDPOINT_1": "alerting-1.example:4317",
		"ANVILCOL_ALERTMANAGER_URLS":   "[http://am-0.example:9093, http://am-1.example:9093]",
	}
	files, err := filepath.Glob(filepath.Join(e2etest.RepoRoot(t), "config", "*.yaml"))
	if err != nil || len(files) < 3 {
		t.Fatalf("want config/local.yaml, agent.yaml, gateway.yaml; found %v (%v)", files, err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			b, _ := os.ReadFile(f)
			header := leadingComment(string(b))
			if header == "" {
				t.Errorf("%s does not start with a comment block saying what it is for", f)
			}
			for _, v := range envVarsRead(t, f) {
				if !strings.Contains(header, v) {
					t.Errorf("%s reads ${env:%s} but its header comment does not document it", filepath.Base(f), v)
				}
			}
			out, err := e2etest.Run(t, env, "validate", "--config", f)
			if err != nil {
				t.Fatalf("anvilcol validate --config %s: %v\n%s", f, err, out)
			}
			if filepath.Base(f) == "agent.yaml" { // it runs on both distributions
				out, err := e2etest.RunBinary(t, e2etest.AgentBinary(t), env, "validate", "--config", f)
				if err != nil {
					t.Fatalf("anvilcol-agent validate --config %s: %v\n%s", f, err, out)
				}
			}
		})
	}
}

// The shipped configs keep one source per metric name: wherever the statsd
// receiver runs, it has a metrics pipeline of its own (nothing else in it)
// that renames every metric `statsd.<name>` with transform/statsd and
// otherwise does what the config's `metrics` pipeline does: the same
// processors in the same order (deltatocumulative, cardinality_guard on the
// agent), the same exporters. The rename is in no other pipeline.
func TestShippedConfigsGiveStatsDItsOwnNames(t *testing.T) {
	type pipeline struct {
		Receivers, Processors, Exporters []string
	}
	type config struct {
		Receivers  map[string]any `yaml:"receivers"`
		Processors map[string]struct {
			MetricStatements []string `yaml:"metric_statements"`
		} `yaml:"processors"`
		Service struct {
			Pipelines map[string]pipeline `yaml:"pipelines"`
		} `yaml:"service"`
	}
	files, err := filepath.Glob(filepath.Join(e2etest.RepoRoot(t), "config", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	withStatsD := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var cfg config
		if err := yaml.Unmarshal(b, &cfg); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		name := filepath.Base(f)
		if _, ok := cfg.Receivers["statsd"]; !ok {
			continue
		}
		withStatsD++
		if got, want := cfg.Processors["transform/statsd"].MetricStatements,
			[]string{`set(metric.name, Concat(["statsd.", metric.name], ""))`}; !slices.Equal(got, want) {
			t.Errorf("%s: transform/statsd statements %q, want %q", name, got, want)
		}
		// metrics/statsd mirrors metrics, metrics/statsd_<x> mirrors
		// metrics/<x> (e.g. the prometheus pipeline with zero_step).
		twinOf := func(id string) string {
			if rest, ok := strings.CutPrefix(id, "metrics/statsd_"); ok {
				return "metrics/" + rest
			}
			return strings.TrimSuffix(id, "/statsd")
		}
		if _, ok := cfg.Service.Pipelines["metrics"]; !ok {
			t.Errorf("%s: no metrics pipeline", name)
		}
		for id, p := range cfg.Service.Pipelines {
			hasStatsD, hasRename := slices.Contains(p.Receivers, "statsd"), slices.Contains(p.Processors, "transform/statsd")
			twin, twinOK := cfg.Service.Pipelines[twinOf(id)]
			switch {
			case hasStatsD != hasRename:
				t.Errorf("%s: pipeline %s: receivers %v, processors %v: statsd and transform/statsd go together", name, id, p.Receivers, p.Processors)
			case !hasStatsD:
			case !strings.HasPrefix(id, "metrics/statsd") || !slices.Equal(p.Receivers, []string{"statsd"}) || !twinOK:
				t.Errorf("%s: pipeline %s receives %v: want metrics/statsd[_<x>] receiving statsd alone, beside metrics[/<x>]", name, id, p.Receivers)
			default:
				rest := slices.DeleteFunc(slices.Clone(p.Processors), func(s string) bool { return s == "transform/statsd" })
				if !slices.Equal(rest, twin.Processors) || !slices.Equal(p.Exporters, twin.Exporters) {
					t.Errorf("%s: %s %v -> %v, want the %s pipeline's %v -> %v plus transform/statsd",
						name, id, p.Processors, p.Exporters, twinOf(id), twin.Processors, twin.Exporters)
				}
			}
		}
		if _, ok := cfg.Service.Pipelines["metrics/statsd"]; !ok {
			t.Errorf("%s: has a statsd receiver but no metrics/statsd pipeline", name)
		}
	}
	if withStatsD < 2 {
		t.Errorf("%d shipped configs with a statsd receiver, want at least agent.yaml and local.yaml", withStatsD)
	}
}

func leadingComment(s string) string {
	var b strings.Builder
	for _, line := range strings.Split(s, "\n") {
		if !strings.HasPrefix(line, "#") {
			break
		}
		b.WriteString(line)
		b.WriteByte('\n')
	}
	return b.String()
}

// localEnv gives every port config/local.yaml reads a free one; the ports are
// in the returned map under their variable names.
func localEnv(t *testing.T) map[string]string {
	env := map[string]string{"ANVILCOL_STATSD_PORT": fmt.Sprint(e2etest.FreeUDPPort(t))}
	for _, k := range []string{"ANVILCOL_HEALTH_PORT", "ANVILCOL_OTLP_HTTP_PORT", "ANVILCOL_OTLP_GRPC_PORT",
		"ANVILCOL_PROMETHEUS_PORT", "ANVILCOL_ZPAGES_PORT", "ANVILCOL_TELEMETRY_PORT", "ANVILCOL_ANVIL_PORT"} {
		env[k] = fmt.Sprint(e2etest.FreePort(t))
	}
	return env
}

// envPort reads a port back from localEnv's map.
func envPort(t *testing.T, env map[string]string, key string) int {
	p, err := strconv.Atoi(env[key])
	if err != nil {
		t.Fatalf("%s=%q: %v", key, env[key], err)
	}
	return p
}

func TestLocalConfigServesHealthAndOTLP(t *testing.T) {
	env := localEnv(t)
	health, otlpHTTP := envPort(t, env, "ANVILCOL_HEALTH_PORT"), envPort(t, env, "ANVILCOL_OTLP_HTTP_PORT")
	c := e2etest.Start(t, e2etest.Options{Config: "config/local.yaml", Env: env, HealthPort: health})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	code := postJSON(ctx, t, fmt.Sprintf("http://127.0.0.1:%d/v1/traces", otlpHTTP), `{"resourceSpans":[]}`)
	if code != 200 {
		t.Fatalf("OTLP/HTTP POST /v1/traces answered %d, want 200", code)
	}
	if err := c.Stop(); err != nil {
		t.Fatalf("anvilcol did not shut down cleanly: %v\n%s", err, c.Output())
	}
}
