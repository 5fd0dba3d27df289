package alertprocessor

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestLastIsTheLatestAcrossSlotsAndRestarts(t *testing.T) {
	newAcc := newAccumulator(StatLast, nil)
	t0 := time.Unix(100, 0).UTC()
	a, b := newAcc(), newAcc()
	a.addEvent(7, t0.Add(time.Second))
	a.addEvent(1, t0) // late data does not replace a later value
	b.addMetric(obs{kind: kindGauge, value: 3, hasValue: true}, t0.Add(2*time.Second))
	b.addMetric(obs{kind: kindHistogram}, t0.Add(3*time.Second)) // a baseline has no value
	total := newAcc()
	total.merge(roundTrip(t, a, newAcc))
	v, _ := total.value(0)
	assert.Equal(t, 7.0, v)
	total.merge(roundTrip(t, b, newAcc))
	v, ok := total.value(0)
	assert.True(t, ok)
	assert.Equal(t, 3.0, v)
	_, ok = newAcc().value(0)
	assert.False(t, ok)
}
