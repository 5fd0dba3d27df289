package foundationexporter

import "testing"

func TestPointsFromKeepsOnlyTheUnsentTail(t *testing.T) {
	md := allKinds() // 8 points, one per metric
	for from, wantFirst := range map[int]string{0: "anvil.label.submit.count", 3: "anvil.agreement.score", 7: "anvil.broken"} {
		got := pointsFrom(md, from)
		if n := got.DataPointCount(); n != 8-from {
			t.Errorf("from %d: %d points, want %d", from, n, 8-from)
		}
		ms := got.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics()
		if ms.At(0).Name() != wantFirst {
			t.Errorf("from %d: first metric %s, want %s", from, ms.At(0).Name(), wantFirst)
		}
	}
	if got := pointsFrom(md, 8); got.ResourceMetrics().Len() != 0 {
		t.Error("nothing left must leave no empty resource behind")
	}
	if md.DataPointCount() != 8 {
		t.Error("the input was modified")
	}
}
