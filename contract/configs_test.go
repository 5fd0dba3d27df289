package contract

import (
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// The shipped collector configs (../config) agree with the contract: alert
// rules read events and metrics that exist, group and read keys those carry;
// sampling hashes a key of the contract; and the contract's `read_by` names
// exactly these readers.

// collectorConfig is the part of a collector config these tests read.
type collectorConfig struct {
	Processors map[string]yaml.Node `yaml:"processors"`
}

type alertRule struct {
	Name    string   `yaml:"name"`
	Metric  string   `yaml:"metric"`
	Event   string   `yaml:"event"`
	Field   string   `yaml:"field"`
	GroupBy []string `yaml:"group_by"`
}

type alertProcessor struct {
	Rules []alertRule `yaml:"rules"`
}

type samplingProcessor struct {
	HashAttribute string `yaml:"hash_attribute"`
}

type cardinalityGuard struct {
	DropAttributes []string `yaml:"drop_attributes"`
	Metrics        map[string]struct {
		AllowedAttributes []string `yaml:"allowed_attributes"`
		MaxSeries         *int     `yaml:"max_series"`
	} `yaml:"metrics"`
}

// shippedConfigs returns ../config/*.yaml by file name.
func shippedConfigs(t *testing.T) map[string]collectorConfig {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("..", "config", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no configs in ../config: %v", err)
	}
	out := map[string]collectorConfig{}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var cfg collectorConfig
		if err := yaml.Unmarshal(raw, &cfg); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out[filepath.Base(f)] = cfg
	}
	return out
}

// processorsOf decodes the processors of one type (`alert`, `alert/x`, ...)
// of a config, by their id.
func processorsOf[T any](t *testing.T, file string, cfg collectorConfig, typ string) map[string]T {
	t.Helper()
	out := map[string]T{}
	for id, node := range cfg.Processors {
		if id != typ && !strings.HasPrefix(id, typ+"/") {
			continue
		}
		var p T
		if err := node.Decode(&p); err != nil {
			t.Fatalf("%s: processors.%s: %v", file, id, err)
		}
		out[id] = p
	}
	return out
}

// shippedRule is an alert rule and where it is configured.
type shippedRule struct {
	alertRule
	where string
}

func shippedRules(t *testing.T) []shippedRule {
	t.Helper()
	var out []shippedRule
	for file, cfg := range shippedConfigs(t) {
		for id, p := range processorsOf[alertProcessor](t, file, cfg, "alert") {
			for i, r := range p.Rules {
				out = append(out, shippedRule{r, file + ": processors." + id + ".rules[" + strconv.Itoa(i) + "] " + r.Name})
			}
		}
	}
	slices.SortFunc(out, func(a, b shippedRule) int { return strings.Compare(a.where, b.where) })
	return out
}

// resourceKeys are resource attributes every signal of an agent carries
// (ARCHITECTURE.md, writer identity): an alert may group by them too.
var resourceKeys = []string{"service.name", "service.instance.id", "host.name"}

// match returns the names that a rule's name glob (`*`) matches.
func match(glob string, names []string) []string {
	var out []string
	for _, n := range names {
		if ok, _ := path.Match(glob, n); ok {
			out = append(out, n)
		}
	}
	return out
}

// Every alert rule of the shipped configs reads an event of the contract or a
// metric of the catalog, and groups by (and reads) keys that the event or
// metric carries: a rule grouped by a key its data lacks fires one alert for
// all groups, one reading a missing field never fires.
func TestAlertRulesReadWhatTheContractCarries(t *testing.T) {
	c := MustLoad()
	rules := shippedRules(t)
	for _, must := range []string{"gateway.yaml", "alerting.yaml"} {
		if !slices.ContainsFunc(rules, func(r shippedRule) bool { return strings.HasPrefix(r.where, must+":") }) {
			t.Errorf("%s: no alert rules found", must)
		}
	}
	var metricNames []string
	for _, m := range c.Metrics {
		metricNames = append(metricNames, m.Name)
	}
	for _, r := range rules {
		switch {
		case r.Event != "" && r.Metric != "":
			t.Errorf("%s: both event and metric", r.where)
		case r.Event != "":
			events := match(r.Event, c.Names())
			if len(events) == 0 {
				t.Errorf("%s: event %q matches no event of the contract", r.where, r.Event)
			}
			for _, name := range events {
				w, _ := c.Wire(name)
				md, ms := w.Metadata(), w.Measurements()
				for _, k := range r.GroupBy {
					if _, ok := md[k]; !ok && !slices.Contains(resourceKeys, k) {
						t.Errorf("%s: group_by %q: %s does not carry it", r.where, k, name)
					}
				}
				if r.Field != "" {
					_, inMs := ms[r.Field]
					_, inMd := md[r.Field]
					if !inMs && !inMd {
						t.Errorf("%s: field %q: %s carries it neither as a measurement nor as metadata", r.where, r.Field, name)
					}
				}
			}
		case r.Metric != "":
			metrics := match(r.Metric, metricNames)
			if len(metrics) == 0 {
				t.Errorf("%s: metric %q matches no metric of the catalog", r.where, r.Metric)
			}
			if r.Field != "" {
				t.Errorf("%s: field %q: a metric rule reads the metric's value, field is for event rules", r.where, r.Field)
			}
			for _, name := range metrics {
				m := c.Metrics[slices.Index(metricNames, name)]
				for _, k := range r.GroupBy {
					if !slices.Contains(m.Tags, k) && !slices.Contains(resourceKeys, k) {
						t.Errorf("%s: group_by %q is not a tag of %s (tags %v)", r.where, k, name, m.Tags)
					}
				}
			}
		default:
			t.Errorf("%s: neither event nor metric", r.where)
		}
	}
}

// The agent samples by a key the contract defines (a hash attribute no event
// carries would sample every event by the default rate, each on its own).
func TestSamplingHashAttributeIsAContractKey(t *testing.T) {
	c := MustLoad()
	found := false
	for file, cfg := range shippedConfigs(t) {
		for id, p := range processorsOf[samplingProcessor](t, file, cfg, "sampling") {
			if p.HashAttribute == "" {
				continue
			}
			if file == "agent.yaml" {
				found = true
			}
			if len(eventsWithKey(c, p.HashAttribute)) == 0 {
				t.Errorf("%s: processors.%s.hash_attribute %q is a key of no event of the contract", file, id, p.HashAttribute)
			}
		}
	}
	if !found {
		t.Error("agent.yaml: no sampling processor with a hash_attribute")
	}
}

// eventsWithKey returns the catalog events with a metadata key.
func eventsWithKey(c *Contract, key string) []string {
	var out []string
	for _, ev := range c.Events {
		if _, ok := ev.Metadata[key]; ok {
			out = append(out, ev.Name)
		}
	}
	return out
}

var (
	readByAlert   = regexp.MustCompile(`^alert (\S+) (group_by|field)$`)
	readByThrough = regexp.MustCompile(`^alert (\S+) \(through (\S+)\)$`)
)

const readBySampling = "sampling hash_attribute (config/agent.yaml)"

// The contract's read_by names the shipped readers truly, both ways: an
// `alert <rule> group_by|field` entry names a rule that reads that key, and
// every key a rule groups by or reads is marked so on its event; every key
// the agent samples by is marked `sampling hash_attribute`, and only those.
func TestReadByNamesTheShippedReaders(t *testing.T) {
	c := MustLoad()
	rules := map[string]alertRule{}
	for _, r := range shippedRules(t) {
		rules[r.Name] = r.alertRule // the same rule in several configs: kept in step by the configs' own comments
	}
	var hashKeys []string
	for file, cfg := range shippedConfigs(t) {
		if file != "agent.yaml" {
			continue
		}
		for _, p := range processorsOf[samplingProcessor](t, file, cfg, "sampling") {
			hashKeys = append(hashKeys, p.HashAttribute)
		}
	}

	// rule name + "/" + event + "/" + key, as the contract marks them.
	marked := map[string]bool{}
	for _, ev := range c.Events {
		keys := map[string]Key{}
		for k, v := range ev.Measurements {
			keys[k] = v
		}
		for k, v := range ev.Metadata {
			keys[k] = v
		}
		for _, k := range SortedKeys(keys) {
			sampled := false
			for _, rb := range keys[k].ReadBy {
				where := ev.Name + " " + k + ": read_by " + rb
				switch {
				case rb == readBySampling:
					sampled = true
					if !slices.Contains(hashKeys, k) {
						t.Errorf("%s: the agent samples by %v", where, hashKeys)
					}
				case readByAlert.MatchString(rb):
					sm := readByAlert.FindStringSubmatch(rb)
					r, ok := rules[sm[1]]
					if !ok {
						t.Errorf("%s: no such rule in the shipped configs", where)
						continue
					}
					if (sm[2] == "group_by" && !slices.Contains(r.GroupBy, k)) || (sm[2] == "field" && r.Field != k) {
						t.Errorf("%s: rule %s has group_by %v, field %q", where, r.Name, r.GroupBy, r.Field)
					}
					marked[sm[1]+"/"+ev.Name+"/"+k] = true
				case readByThrough.MatchString(rb):
					sm := readByThrough.FindStringSubmatch(rb)
					if r, ok := rules[sm[1]]; !ok || r.Metric != sm[2] {
						t.Errorf("%s: no rule %s reading metric %s in the shipped configs", where, sm[1], sm[2])
					}
				case strings.HasPrefix(rb, "alert ") || strings.HasPrefix(rb, "sampling"):
					t.Errorf("%s: write `alert <rule> group_by|field`, `alert <rule> (through <metric>)` or %q", where, readBySampling)
				}
			}
			if slices.Contains(hashKeys, k) && !sampled {
				t.Errorf("%s %s: the agent samples by it; add %q to its read_by", ev.Name, k, readBySampling)
			}
		}
	}

	// The other way: what each rule reads is marked on its event (a metric
	// rule's group_by on the event its metric reads, at the span level).
	for _, r := range rules {
		var events []string
		if r.Event != "" {
			events = match(r.Event, c.Names())
		}
		if r.Metric != "" {
			for _, m := range c.Metrics {
				if ok, _ := path.Match(r.Metric, m.Name); ok {
					events = append(events, m.Event)
				}
			}
		}
		for _, name := range events {
			w, _ := c.Wire(name)
			for _, k := range r.GroupBy {
				if !slices.Contains(resourceKeys, k) && !marked[r.Name+"/"+w.Event.Name+"/"+k] {
					t.Errorf("rule %s groups by %s of %s: add \"alert %s group_by\" to its read_by", r.Name, k, w.Event.Name, r.Name)
				}
			}
			if r.Field != "" && !marked[r.Name+"/"+w.Event.Name+"/"+r.Field] {
				t.Errorf("rule %s reads %s of %s: add \"alert %s field\" to its read_by", r.Name, r.Field, w.Event.Name, r.Name)
			}
		}
	}
}

// A metric that keeps a high-cardinality key on purpose (Metric.Capped) is
// let through by every shipped cardinality guard that would drop the key, for
// that metric only and under a series cap; and no other metric is.
func TestCappedKeysAreCappedByTheShippedGuards(t *testing.T) {
	c := MustLoad()
	capped := map[string][]string{}
	for _, m := range c.Metrics {
		if len(m.Capped) > 0 {
			capped[m.Name] = m.Capped
		}
	}
	if len(capped) == 0 {
		t.Fatal("no capped metric in the contract: this test checks nothing")
	}
	guards := 0
	for file, cfg := range shippedConfigs(t) {
		for id, g := range processorsOf[cardinalityGuard](t, file, cfg, "cardinality_guard") {
			guards++
			for name, keys := range capped {
				o, ok := g.Metrics[name]
				for _, k := range keys {
					if !slices.Contains(g.DropAttributes, k) {
						continue
					}
					if !ok || !slices.Contains(o.AllowedAttributes, k) {
						t.Errorf("%s: processors.%s drops %s from %s (contract: capped): allow it under metrics::%s::allowed_attributes", file, id, k, name, name)
					}
				}
				if ok && (o.MaxSeries == nil || *o.MaxSeries <= 0) {
					t.Errorf("%s: processors.%s metrics::%s keeps a high-cardinality key without a max_series cap", file, id, name)
				}
			}
			for name, o := range g.Metrics {
				if _, ok := capped[name]; ok {
					continue
				}
				for _, k := range o.AllowedAttributes {
					if slices.Contains(highCardinality, k) {
						t.Errorf("%s: processors.%s metrics::%s allows %s, which the contract does not cap for it", file, id, name, k)
					}
				}
			}
		}
	}
	if guards == 0 {
		t.Fatal("no cardinality_guard in the shipped configs")
	}
}
