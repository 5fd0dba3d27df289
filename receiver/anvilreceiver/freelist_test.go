package anvilreceiver

import (
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestFreeListReusesAFewObjectsAcrossGC(t *testing.T) {
	made := 0
	fl := newFreeList(func() *[]byte { made++; b := make([]byte, 0, 8); return &b })
	a := fl.get()
	fl.put(a)
	runtime.GC() // a sync.Pool would drop it here
	require.Same(t, a, fl.get())
	require.Equal(t, 1, made)

	// Beyond its capacity, objects are left to the garbage collector.
	n := cap(fl.ch) + 3
	objs := make([]*[]byte, n)
	for i := range objs {
		objs[i] = fl.get()
	}
	for _, o := range objs {
		fl.put(o)
	}
	require.Len(t, fl.ch, cap(fl.ch))
}
