package alertprocessor

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestEachHoldsTheLatestViolation(t *testing.T) {
	newAcc := newAccumulator(StatEach, func(v float64) bool { return v < 0.4 })
	a, b := newAcc(), newAcc()
	a.addEvent(0.2, time.Time{})
	a.addEvent(0.9, time.Time{})
	b.addEvent(0.5, time.Time{})
	total := newAcc()
	total.merge(roundTrip(t, a, newAcc))
	total.merge(roundTrip(t, b, newAcc))
	v, ok := total.value(0)
	assert.True(t, ok)
	assert.Equal(t, 0.2, v, "b met no condition: a's violation stands")
	_, ok = newAcc().value(0)
	assert.False(t, ok)
}
