package main

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"time"
)

// A scenario is one Anvil operation; it emits the events Anvil fires for it
// (a :telemetry.span's start and stop, the point events around it).
type scenario struct {
	name string
	emit func(g *generator, now int64) []Event
}

// scenarios, in the order of -weights' default; weights are relative
// frequencies of operations (not of events: a label submit is 2 events, an
// export about 6).
var scenarios = []scenario{
	{"label", (*generator).labelSubmit},
	{"dispatch", (*generator).dispatch},
	{"agreement", (*generator).agreement},
	{"policy", (*generator).policy},
	{"auth", (*generator).auth},
	{"export", (*generator).export},
	{"timeout", (*generator).timeout},
	{"queue", (*generator).queue},
}

// DefaultWeights is a labeling platform at work: mostly label submits and the
// dispatches that feed them, agreement checks on a share of them, logins and
// access checks, a few exports.
const DefaultWeights = "label=50,dispatch=20,agreement=10,policy=10,auth=6,export=2,timeout=1,queue=1"

// parseWeights reads "name=w,name=w"; names missing from s get weight 0.
func parseWeights(s string) ([]float64, error) {
	w := make([]float64, len(scenarios))
	var total float64
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, num, ok := strings.Cut(part, "=")
		if !ok {
			return nil, fmt.Errorf("-weights: %q is not name=weight", part)
		}
		i := scenarioIndex(name)
		if i < 0 {
			return nil, fmt.Errorf("-weights: unknown scenario %q (known: %s)", name, scenarioNames())
		}
		f, err := strconv.ParseFloat(num, 64)
		if err != nil || f < 0 || math.IsInf(f, 0) || math.IsNaN(f) {
			return nil, fmt.Errorf("-weights: %s=%s must be a number >= 0", name, num)
		}
		w[i] = f
		total += f
	}
	if total == 0 {
		return nil, fmt.Errorf("-weights: at least one scenario needs a weight > 0")
	}
	return w, nil
}

func scenarioIndex(name string) int {
	for i, s := range scenarios {
		if s.name == name {
			return i
		}
	}
	return -1
}

func scenarioNames() string {
	n := make([]string, len(scenarios))
	for i, s := range scenarios {
		n[i] = s.name
	}
	sort.Strings(n)
	return strings.Join(n, ", ")
}

// Pool sizes of the metadata values: queues and schema versions are few (they
// become metric tags), labelers, samples and assignments many (they never do).
const (
	queues         = 40
	schemaVersions = 6
	labelers       = 20000
)

var (
	policyTypes = []string{"round_robin", "priority", "expertise", "least_loaded"}
	agreeMetric = []string{"cohen_kappa", "krippendorff_alpha", "fleiss_kappa"}
	dimensions  = []string{"bbox", "class", "polygon", "transcript"}
	sampleTypes = []string{"image", "text", "audio"}
	formats     = []string{"jsonl", "csv", "parquet", "coco"}
	providers   = []string{"github", "google", "saml"}
	failReasons = []string{"bad_password", "locked", "mfa_failed"}
	actions     = []string{"label", "review", "export", "admin"}
	denyReasons = []string{"not_member", "role", "suspended"}
	requeues    = []string{"timeout", "skipped", "reassigned"}
	piiPatterns = []string{"email", "phone", "ssn"}
)

// generator produces one node's events. Not safe for concurrent use.
type generator struct {
	rnd     *rand.Rand
	cum     []float64 // cumulative weights
	pending []Event
	exports int
}

func newGenerator(seed uint64, weights []float64) *generator {
	g := &generator{rnd: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
	var c float64
	for _, w := range weights {
		c += w
		g.cum = append(g.cum, c)
	}
	return g
}

// next appends n events to dst, the operations' events in order (an
// operation's events may straddle two calls, as they straddle two batches of
// a real forwarder).
func (g *generator) next(dst []Event, n int, now time.Time) []Event {
	ns := now.UnixNano()
	for n > 0 {
		if len(g.pending) == 0 {
			i := g.pickScenario()
			g.pending = scenarios[i].emit(g, ns)
		}
		k := min(n, len(g.pending))
		dst = append(dst, g.pending[:k]...)
		g.pending = g.pending[k:]
		n -= k
	}
	return dst
}

// pickScenario draws a scenario by weight: the first whose cumulative
// weight exceeds x (a zero weight never wins).
func (g *generator) pickScenario() int {
	x := g.rnd.Float64() * g.cum[len(g.cum)-1]
	for i, c := range g.cum {
		if x < c {
			return i
		}
	}
	return len(g.cum) - 1
}

func (g *generator) pick(s []string) string { return s[g.rnd.IntN(len(s))] }
func (g *generator) chance(p float64) bool  { return g.rnd.Float64() < p }

func (g *generator) hex(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = hexDigits[g.rnd.IntN(16)]
	}
	return string(b)
}

// traceparent is the W3C context of the request the operation runs in.
func (g *generator) traceparent() kv {
	return kv{"traceparent", str("00-" + g.hex(32) + "-" + g.hex(16) + "-01")}
}

func (g *generator) queueID() kv {
	return kv{"queue_id", str(fmt.Sprintf("q-%04d", g.rnd.IntN(queues)))}
}
func (g *generator) labelerID() kv {
	return kv{"labeler_id", str("u-" + strconv.Itoa(g.rnd.IntN(labelers)))}
}
func (g *generator) id(key, prefix string) kv {
	return kv{key, str(prefix + strconv.FormatUint(g.rnd.Uint64()>>20, 36))}
}

// duration draws a log-normal duration in ns around median ms.
func (g *generator) duration(medianMs float64) int64 {
	d := medianMs * math.Exp(0.6*g.rnd.NormFloat64()) * 1e6
	return int64(max(d, 1000))
}

// span emits the start and stop (or, with probability pErr, exception)
// events of one :telemetry.span, ending at now; metadata is shared, the stop
// event adds stopMeta.
func (g *generator) span(prefix string, now, dur int64, meta, stopMeta []kv, pErr float64) []Event {
	start := Event{Name: prefix + ".start", TimeUnixNano: now - dur,
		Measurements: []kv{{"monotonic_time", integer(-576460751000000000 + now - dur)}, {"system_time", integer(now - dur)}},
		Metadata:     meta}
	stopMeta = append(append([]kv(nil), meta...), stopMeta...)
	stop := Event{Name: prefix + ".stop", TimeUnixNano: now,
		Measurements: []kv{{"duration", integer(dur)}, {"monotonic_time", integer(-576460751000000000 + now)}},
		Metadata:     stopMeta}
	if g.chance(pErr) {
		stop.Name = prefix + ".exception"
		stop.Metadata = append(stop.Metadata, kv{"kind", str("error")},
			kv{"reason", str("%RuntimeError{message: \"" + prefix + " failed\"}")},
			kv{"stacktrace", str("Anvil.Worker.run/2 lib/anvil/worker.ex:88\nAnvil.Telemetry.span/3 lib/anvil/telemetry.ex:12")})
	}
	return []Event{start, stop}
}

func (g *generator) labelSubmit(now int64) []Event {
	meta := []kv{g.queueID(), g.labelerID(), g.id("assignment_id", "a-"), g.traceparent(), {"sample_type", str(g.pick(sampleTypes))}}
	stop := []kv{{"schema_version_id", str("sv-" + strconv.Itoa(g.rnd.IntN(schemaVersions)))}, g.id("sample_id", "s-")}
	ev := g.span("anvil.label.submit", now, g.duration(80), meta, stop, 0.002)
	if ev[1].Name == "anvil.label.submit.stop" {
		// Returned with the 3-tuple: time since the dispatch (native unit, ns) and the label's cost.
		ev[1].Measurements = append(ev[1].Measurements, kv{"time_on_task", integer(int64(30+g.rnd.IntN(600)) * 1_000_000_000)},
			kv{"cost", integer(int64(5 + g.rnd.IntN(50)))})
	}
	if g.chance(0.03) {
		ev = append(ev, Event{Name: "anvil.label.validation_failed", TimeUnixNano: now,
			Measurements: []kv{}, Metadata: append(append([]kv(nil), stop...), meta[0], meta[1], kv{"errors", str("bbox: out of bounds")})})
	}
	return ev
}

func (g *generator) dispatch(now int64) []Event {
	// ADR-008: the dispatch starts for a queue and a labeler; the assignment
	// and the policy that chose it are what it returns.
	l := g.labelerID()
	meta := []kv{g.queueID(), l, g.traceparent()}
	a := g.id("assignment_id", "a-")
	ev := g.span("anvil.assignment.dispatch", now, g.duration(40), meta, []kv{a, {"policy_type", str(g.pick(policyTypes))}}, 0.005)
	return append(ev, Event{Name: "anvil.assignment.created", TimeUnixNano: now, Measurements: []kv{},
		Metadata: []kv{meta[0], a, l, meta[2]}})
}

func (g *generator) agreement(now int64) []Event {
	meta := []kv{{"metric", str(g.pick(agreeMetric))}, g.id("sample_id", "s-"), g.traceparent(), g.queueID()}
	dimension := kv{"dimension", str(g.pick(dimensions))}
	ev := g.span("anvil.agreement.compute", now, g.duration(60), meta, []kv{dimension}, 0.002)
	if ev[1].Name == "anvil.agreement.compute.stop" {
		// ADR-008: the span's function returns {result, %{score: s}, %{dimension: d}}.
		ev[1].Measurements = append(ev[1].Measurements, kv{"score", float(math.Round((0.5+g.rnd.Float64()*0.5)*1000) / 1000)})
	}
	if g.chance(0.05) { // Anvil's agreement of one labeler with the consensus
		ev = append(ev, Event{Name: "anvil.agreement.labeler", TimeUnixNano: now,
			Measurements: []kv{{"score", float(math.Round(g.rnd.Float64()*1000) / 1000)}},
			Metadata:     []kv{g.labelerID(), meta[3], meta[0]}})
	}
	if g.chance(0.05) { // now and then a queue's scores are recomputed in batch
		ev = append(ev, g.span("anvil.agreement.batch_recompute", now, g.duration(5000), []kv{meta[3], meta[2]}, nil, 0.1)...)
	}
	if g.chance(0.2) {
		score := math.Round(g.rnd.Float64()*0.6*1000) / 1000
		ev = append(ev, Event{Name: "anvil.agreement.low_score", TimeUnixNano: now,
			Measurements: []kv{{"value", float(score)}},
			Metadata:     []kv{meta[1], {"dimension", str(g.pick(dimensions))}, {"threshold", float(0.6)}, meta[2]}})
	}
	return ev
}

func (g *generator) policy(now int64) []Event {
	meta := []kv{{"policy_type", str(g.pick(policyTypes))}, g.queueID(), g.traceparent()}
	ev := g.span("anvil.policy.select_assignment", now, g.duration(5), meta, nil, 0.01)
	if g.chance(0.1) {
		ev = append(ev, Event{Name: "anvil.policy.requeue", TimeUnixNano: now, Measurements: []kv{},
			Metadata: []kv{{"reason", str(g.pick(requeues))}, g.id("assignment_id", "a-"), meta[1]}})
	}
	return ev
}

func (g *generator) auth(now int64) []Event {
	user := kv{"user_id", str("u-" + strconv.Itoa(g.rnd.IntN(labelers)))}
	provider := kv{"provider", str(g.pick(providers))}
	switch x := g.rnd.Float64(); {
	case x < 0.3:
		return []Event{{Name: "anvil.auth.login_success", TimeUnixNano: now, Measurements: []kv{}, Metadata: []kv{provider, user}}}
	case x < 0.35:
		return []Event{{Name: "anvil.auth.login_failed", TimeUnixNano: now, Measurements: []kv{},
			Metadata: []kv{provider, {"reason", str(g.pick(failReasons))}}}}
	case x < 0.95:
		return []Event{{Name: "anvil.auth.access_granted", TimeUnixNano: now, Measurements: []kv{},
			Metadata: []kv{{"action", str(g.pick(actions))}, user}}}
	default:
		return []Event{{Name: "anvil.auth.access_denied", TimeUnixNano: now, Measurements: []kv{},
			Metadata: []kv{{"action", str(g.pick(actions))}, {"reason", str(g.pick(denyReasons))}, user}}}
	}
}

func (g *generator) export(now int64) []Event {
	g.exports++
	meta := []kv{{"export_id", str(fmt.Sprintf("e-%x-%d", g.rnd.Uint32(), g.exports))}, g.queueID(), {"format", str(g.pick(formats))}}
	dur := g.duration(8000)
	rows := int64(1000 + g.rnd.IntN(100000))
	ev := []Event{{Name: "anvil.export.generate.start", TimeUnixNano: now - dur, Measurements: []kv{
		{"monotonic_time", integer(-576460751000000000 + now - dur)}, {"system_time", integer(now - dur)}}, Metadata: meta}}
	for _, pct := range []int64{50, 100} {
		ev = append(ev, Event{Name: "anvil.export.progress", TimeUnixNano: now - dur*(100-pct)/100,
			Measurements: []kv{{"rows_processed", integer(rows * pct / 100)}},
			Metadata:     []kv{meta[0], meta[1], {"total_rows", integer(rows)}, {"progress_pct", integer(pct)}}})
	}
	if g.chance(0.1) {
		ev = append(ev, Event{Name: "anvil.export.pii_detected", TimeUnixNano: now - dur/2,
			Measurements: []kv{{"count", integer(1)}}, Metadata: []kv{meta[0], meta[1], {"pattern", str(g.pick(piiPatterns))}}})
	}
	if g.chance(0.03) {
		return append(ev,
			Event{Name: "anvil.export.generate.exception", TimeUnixNano: now, Measurements: []kv{{"duration", integer(dur)}},
				Metadata: append(append([]kv(nil), meta...), kv{"kind", str("error")}, kv{"reason", str("disk full")},
					kv{"stacktrace", str("Anvil.Export.run/1 lib/anvil/export.ex:40")})},
			Event{Name: "anvil.export.failed", TimeUnixNano: now, Measurements: []kv{},
				Metadata: append(append([]kv(nil), meta...), kv{"reason", str("disk full")})})
	}
	return append(ev,
		Event{Name: "anvil.export.generate.stop", TimeUnixNano: now, Measurements: []kv{{"duration", integer(dur)}}, Metadata: meta},
		Event{Name: "anvil.export.completed", TimeUnixNano: now, Measurements: []kv{{"row_count", integer(rows)}}, Metadata: meta})
}

func (g *generator) timeout(now int64) []Event {
	return []Event{{Name: "anvil.assignment.timed_out", TimeUnixNano: now,
		Measurements: []kv{{"count", integer(int64(1 + g.rnd.IntN(5)))}},
		Metadata:     []kv{g.queueID(), {"requeued", boolean(true)}, {"escalated", boolean(g.chance(0.2))}}}}
}

func (g *generator) queue(now int64) []Event {
	q := g.queueID()
	switch x := g.rnd.Float64(); {
	case x < 0.4:
		return []Event{{Name: "anvil.queue.created", TimeUnixNano: now, Measurements: []kv{},
			Metadata: []kv{q, {"tenant_id", str("t-" + strconv.Itoa(g.rnd.IntN(8)))}}}}
	case x < 0.8: // what the forwarder's pollers report from Anvil's database
		return []Event{
			{Name: "anvil.queue.active_labelers", TimeUnixNano: now, Measurements: []kv{{"count", integer(int64(g.rnd.IntN(40)))}}, Metadata: []kv{q}},
			{Name: "anvil.queue.pending_assignments", TimeUnixNano: now, Measurements: []kv{{"count", integer(int64(g.rnd.IntN(500)))}}, Metadata: []kv{q}},
		}
	}
	return []Event{{Name: "anvil.queue.status_changed", TimeUnixNano: now, Measurements: []kv{},
		Metadata: []kv{q, {"from", str("active")}, {"to", str("paused")}}}}
}
