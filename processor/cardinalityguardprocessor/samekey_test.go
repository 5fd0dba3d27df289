package cardinalityguardprocessor

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSameKeyComparesEveryByte(t *testing.T) {
	for n := 0; n <= 40; n++ {
		a := strings.Repeat("k", n)
		require.True(t, sameKey(a, strings.Clone(a)), n)
		require.False(t, sameKey(a, a+"x"), n)
		for i := 0; i < n; i++ {
			b := []byte(a)
			b[i] = 'x'
			require.False(t, sameKey(a, string(b)), "length %d, byte %d", n, i)
		}
	}
}
