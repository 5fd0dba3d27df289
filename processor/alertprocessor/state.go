package alertprocessor // import "github.com/anvil/anvilcol/processor/alertprocessor"

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/extension/xextension/storage"
	"go.uber.org/zap"

	"github.com/anvil/anvilcol/processor/alertprocessor/internal/notify"
)

// The persisted state (README "Persisted state"): one storage key per rule
// holding a JSON document with every group's alert state and window slots,
// and an index key listing the rules saved, so the state of a rule that left
// the config can still be found (and its firing alerts resolved).
const (
	stateVersion    = 1
	stateIndexKey   = "index"
	stateRulePrefix = "rule/"
	stateClientName = "alert_state"
)

// ErrStorageNotFound is returned by Start when `storage` names no storage extension.
var ErrStorageNotFound = errors.New("alert processor storage extension not found")

// pfloat is a float64 that survives JSON: NaN and infinities (a +Inf bucket
// bound, a window without value) are written as the strings "NaN", "+Inf", "-Inf".
type pfloat float64

func (f pfloat) MarshalJSON() ([]byte, error) {
	v := float64(f)
	switch {
	case math.IsNaN(v):
		return []byte(`"NaN"`), nil
	case math.IsInf(v, 1):
		return []byte(`"+Inf"`), nil
	case math.IsInf(v, -1):
		return []byte(`"-Inf"`), nil
	}
	return strconv.AppendFloat(nil, v, 'g', -1, 64), nil
}

func (f *pfloat) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return err
		}
		*f = pfloat(v)
		return nil
	}
	var v float64
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*f = pfloat(v)
	return nil
}

// savedIndex is the value of the index key.
type savedIndex struct {
	Version int      `json:"version"`
	Rules   []string `json:"rules"`
}

// savedRule is the value of a rule key: what is needed to resume the rule,
// and to resolve its firing alerts if the rule changed or was removed.
type savedRule struct {
	Version     int          `json:"version"`
	Rule        string       `json:"rule"`
	Fingerprint string       `json:"fingerprint"`
	Severity    string       `json:"severity"`
	Op          string       `json:"op"`
	Threshold   pfloat       `json:"threshold"`
	Stat        string       `json:"stat"`
	Compare     string       `json:"compare,omitempty"` // baseline rules
	Groups      []savedGroup `json:"groups"`
}

type savedGroup struct {
	Labels       map[string]string `json:"labels"`
	State        string            `json:"state"`
	ActiveAt     time.Time         `json:"active_at,omitzero"`
	LastTrueAt   time.Time         `json:"last_true_at,omitzero"`
	LastNotified time.Time         `json:"last_notified,omitzero"`
	LastRefresh  time.Time         `json:"last_refresh,omitzero"`
	Value        pfloat            `json:"value"`
	Summary      string            `json:"summary,omitempty"`
	Slots        []savedSlot       `json:"slots,omitempty"`
	// Baseline rules: the group's first observation, the window's and the
	// baseline's statistic behind value, and the history slots.
	Since    time.Time   `json:"since,omitzero"`
	Current  pfloat      `json:"current,omitempty"`
	Baseline pfloat      `json:"baseline,omitempty"`
	History  []savedSlot `json:"history,omitempty"`
}

// fingerprint identifies what a rule's saved state means: what it reads and
// how it computes and compares. State saved under another fingerprint is
// discarded. Severity, summary, for and keep_firing_for are left out: a
// change of those keeps the state. Op is numbered from 0 (>) as in format 1.
// The keys added since format 1 are left out when unset, so a rule without
// them keeps the fingerprint it had.
func (r *rule) fingerprint() string {
	b, _ := json.Marshal(struct {
		Metric, Event, Field string
		Stat                 int
		Window, SlotWidth    time.Duration
		Op                   int
		Threshold            pfloat
		GroupBy              []string
		MinCount             float64     `json:",omitempty"`
		Baseline             *fpBaseline `json:",omitempty"`
	}{r.cfg.Metric, r.cfg.Event, r.cfg.Field, int(r.stat), r.window, r.slotWidth, int(r.op) - 1, pfloat(r.threshold), r.groupBy,
		r.minCount, newFPBaseline(r.base)})
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:8])
}

// fpBaseline is what a baseline adds to its rule's fingerprint.
type fpBaseline struct {
	Window, Offset, SlotWidth time.Duration
	Compare                   int
}

func newFPBaseline(b *baseline) *fpBaseline {
	if b == nil {
		return nil
	}
	return &fpBaseline{b.window, b.offset, b.width, int(b.compare)}
}

// encodeRule renders a rule's state; called with the engine lock held.
func encodeRule(r *rule) []byte {
	sr := savedRule{Version: stateVersion, Rule: r.name, Fingerprint: r.fp, Severity: r.sev.String(),
		Op: r.op.String(), Threshold: pfloat(r.threshold), Stat: r.statName()}
	if r.base != nil {
		sr.Compare = r.base.compare.String()
	}
	for _, key := range slices.Sorted(maps.Keys(r.groups)) {
		g := r.groups[key]
		if g.idle() {
			continue // nothing to resume: recreated on demand
		}
		sg := savedGroup{Labels: g.labels, State: g.state.String(), ActiveAt: g.activeAt, LastTrueAt: g.lastTrueAt,
			LastNotified: g.lastNotified, LastRefresh: g.lastRefresh, Value: pfloat(g.value), Summary: g.summary}
		for i := range g.win.slots {
			sg.Slots = append(sg.Slots, saveSlot(&g.win.slots[i]))
		}
		if r.base != nil {
			sg.Since, sg.Current, sg.Baseline = g.since, pfloat(g.current), pfloat(g.baseline)
			for i := range g.hist.slots {
				sg.History = append(sg.History, saveSlot(&g.hist.slots[i]))
			}
		}
		sr.Groups = append(sr.Groups, sg)
	}
	b, err := json.Marshal(sr)
	if err != nil {
		// Every field is encodable (pfloat covers NaN and infinities).
		panic(fmt.Sprintf("alert state of rule %q: %v", r.name, err))
	}
	return b
}

func parseState(s string) (alertState, bool) {
	switch s {
	case "inactive":
		return stateInactive, true
	case "pending":
		return statePending, true
	case "firing":
		return stateFiring, true
	}
	return stateInactive, false
}

// stateStore is the storage client the engine saves its state through.
type stateStore struct {
	client storage.Client
	saved  map[string][]byte // the last value written per key
}

// openStateStore gets the processor's client of the storage extension id.
func openStateStore(ctx context.Context, host component.Host, id, owner component.ID) (*stateStore, error) {
	ext, ok := host.GetExtensions()[id]
	if !ok {
		return nil, fmt.Errorf("%w: `storage` %q: add it under `extensions` and `service.extensions`", ErrStorageNotFound, id)
	}
	se, ok := ext.(storage.Extension)
	if !ok {
		return nil, fmt.Errorf("%w: `storage` %q is not a storage extension (use file_storage)", ErrStorageNotFound, id)
	}
	c, err := se.GetClient(ctx, component.KindProcessor, owner, stateClientName)
	if err != nil {
		return nil, fmt.Errorf("`storage` %q: %w", id, err)
	}
	return &stateStore{client: c, saved: map[string][]byte{}}, nil
}

// restore loads the saved state into the engine's rules. A rule saved with
// the same fingerprint resumes its groups; the firing alerts of a rule that
// changed or left the config are returned as resolved notifications (so no
// incident stays open), and the rest of their state is discarded.
func (e *engine) restore(ctx context.Context, st *stateStore) ([]Notification, error) {
	b, err := st.client.Get(ctx, stateIndexKey)
	if err != nil {
		return nil, fmt.Errorf("read alert state index: %w", err)
	}
	var idx savedIndex
	if b != nil {
		if err := json.Unmarshal(b, &idx); err != nil || idx.Version != stateVersion {
			e.logger.Warn("alert state index unreadable or of another version; starting without saved state",
				zap.Int("version", idx.Version), zap.Error(err))
			idx = savedIndex{}
		}
	}
	names := map[string]bool{}
	for _, n := range idx.Rules {
		names[n] = true
	}
	for _, ar := range e.rules {
		names[ar.alerts().name] = true
	}
	byName := map[string]*rule{}
	for _, ar := range e.rules {
		byName[ar.alerts().name] = ar.alerts()
	}

	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.now()
	var out []Notification
	var resumed, discarded int
	for _, name := range slices.Sorted(maps.Keys(names)) {
		b, err := st.client.Get(ctx, stateRulePrefix+name)
		if err != nil {
			return nil, fmt.Errorf("read alert state of rule %q: %w", name, err)
		}
		if b == nil {
			continue
		}
		var sr savedRule
		if err := json.Unmarshal(b, &sr); err != nil || sr.Version != stateVersion || sr.Rule != name {
			e.logger.Warn("alert state of a rule unreadable or of another version; discarded", zap.String("rule", name), zap.Error(err))
			discarded++
			continue
		}
		r := byName[name]
		if r != nil && r.fp == sr.Fingerprint {
			e.resumeRule(r, &sr)
			st.saved[stateRulePrefix+name] = b
			resumed++
			continue
		}
		// Changed or removed: resolve what was firing, forget the rest.
		discarded++
		for _, sg := range sr.Groups {
			if sg.State != stateFiring.String() {
				continue
			}
			sev, _ := notify.ParseSeverity(sr.Severity)
			if sev == SeverityUnset {
				sev = SeverityWarning
			}
			out = append(out, Notification{
				Rule: name, Status: StatusResolved, Severity: sev, Summary: sg.Summary,
				Value: float64(sg.Value), Threshold: float64(sr.Threshold), Op: sr.Op, Stat: sr.Stat,
				Compare: sr.Compare, Current: float64(sg.Current), Baseline: float64(sg.Baseline),
				Labels: maps.Clone(sg.Labels), DedupKey: dedupKey(name, sg.Labels),
				StartsAt: sg.ActiveAt, EndsAt: now, At: now,
			})
		}
	}
	// Rules that left the config: their alerts are resolved above, their keys go.
	var del []*storage.Operation
	for _, n := range idx.Rules {
		if byName[n] == nil {
			del = append(del, storage.DeleteOperation(stateRulePrefix+n))
		}
	}
	if len(del) > 0 {
		if err := st.client.Batch(ctx, del...); err != nil {
			return nil, fmt.Errorf("delete alert state of removed rules: %w", err)
		}
	}
	if resumed+discarded > 0 {
		e.logger.Info("alert state loaded", zap.Int("rules_resumed", resumed), zap.Int("rules_discarded", discarded),
			zap.Int("alerts_resolved", len(out)))
	}
	return out, nil
}

// resumeRule replaces a rule's groups by the saved ones.
func (e *engine) resumeRule(r *rule, sr *savedRule) {
	for _, sg := range sr.Groups {
		state, ok := parseState(sg.State)
		if !ok {
			continue
		}
		labels := sg.Labels
		if labels == nil {
			labels = map[string]string{}
		}
		if len(r.groupBy) > 0 && len(r.groups) >= e.cfg.MaxGroups {
			break
		}
		key := r.groupKey(labels)
		g := r.groups[key]
		if g == nil {
			g = &group{labels: labels, dedup: dedupKey(r.name, labels)}
			r.groups[key] = g
		}
		g.state, g.activeAt, g.lastTrueAt = state, sg.ActiveAt, sg.LastTrueAt
		g.lastNotified, g.lastRefresh = sg.LastNotified, sg.LastRefresh
		g.value, g.summary = float64(sg.Value), sg.Summary
		loadSlots(&g.win, sg.Slots, r.newAcc)
		if r.base != nil {
			g.since, g.current, g.baseline = sg.Since, float64(sg.Current), float64(sg.Baseline)
			loadSlots(&g.hist, sg.History, r.newAcc)
			g.base = baselineCache{}
		}
	}
}

// loadSlots replaces w's slots by the saved ones (those that load).
func loadSlots(w *window, saved []savedSlot, newAcc func() accumulator) {
	w.slots = w.slots[:0]
	for _, ss := range saved {
		if sl, err := loadSlot(ss, newAcc); err == nil {
			w.slots = append(w.slots, sl)
		}
	}
}

// snapshot renders the rules whose state differs from what was last written,
// plus the index when it changed; called with the engine lock held.
func (e *engine) snapshot(st *stateStore) []*storage.Operation {
	var ops []*storage.Operation
	names := make([]string, 0, len(e.rules))
	for _, ar := range e.rules {
		r := ar.alerts()
		names = append(names, r.name)
		key := stateRulePrefix + r.name
		b := encodeRule(r)
		if !bytes.Equal(st.saved[key], b) {
			ops = append(ops, storage.SetOperation(key, b))
		}
	}
	idx, _ := json.Marshal(savedIndex{Version: stateVersion, Rules: names})
	if !bytes.Equal(st.saved[stateIndexKey], idx) {
		ops = append(ops, storage.SetOperation(stateIndexKey, idx))
	}
	return ops
}

// save writes a snapshot's operations; what was written is remembered so an
// unchanged rule is not written again.
func (e *engine) save(ctx context.Context, st *stateStore, ops []*storage.Operation) error {
	if len(ops) == 0 {
		return nil
	}
	if err := st.client.Batch(ctx, ops...); err != nil {
		return err
	}
	for _, op := range ops {
		st.saved[op.Key] = op.Value
	}
	return nil
}
