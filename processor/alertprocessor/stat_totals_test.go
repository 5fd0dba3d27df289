package alertprocessor

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// roundTrip saves a as a slot and loads it back with newAcc, as a restart does.
func roundTrip(t *testing.T, a accumulator, newAcc func() accumulator) accumulator {
	t.Helper()
	b, err := json.Marshal(saveSlot(&slot{start: time.Unix(0, 0).UTC(), acc: a}))
	require.NoError(t, err)
	var ss savedSlot
	require.NoError(t, json.Unmarshal(b, &ss))
	s, err := loadSlot(ss, newAcc)
	require.NoError(t, err)
	assert.Equal(t, time.Unix(0, 0).UTC(), s.start)
	return s.acc
}

func TestTotalsOverTwoSlots(t *testing.T) {
	now := time.Unix(100, 0)
	for _, tc := range []struct {
		stat Stat
		want float64
	}{{StatCount, 5}, {StatSum, 17}, {StatAvg, 3.4}, {StatIncrease, 8}, {StatRate, 8.0 / 60}} {
		newAcc := newAccumulator(tc.stat, nil)
		a, b := newAcc(), newAcc()
		a.addEvent(2, now)
		a.addEvent(3, now)
		// A histogram delta: 3 observations summing to 12 (its increase is 3).
		b.addMetric(obs{kind: kindHistogram, count: 3, sum: 12, hasDelta: true}, now)
		total := newAcc()
		total.merge(a)
		total.merge(roundTrip(t, b, newAcc))
		v, ok := total.value(time.Minute)
		require.True(t, ok, tc.stat)
		assert.InDelta(t, tc.want, v, 1e-9, tc.stat.String())
	}
	_, ok := newAccumulator(StatAvg, nil)().value(time.Minute)
	assert.False(t, ok, "avg of nothing has no value")
}
