package anvilreceiver // import "github.com/anvil/anvilcol/receiver/anvilreceiver"

import (
	"bytes"
	"runtime"
)

// freeList keeps a few warm objects for reuse. Unlike a sync.Pool it does not
// drop them at every garbage collection: a request's scratch memory (its
// decoder's interned strings, its event slices) and body buffer stay warm
// however often the collector runs, and at most cap(ch) are kept.
type freeList[T any] struct {
	ch    chan T
	newFn func() T
}

func newFreeList[T any](newFn func() T) *freeList[T] {
	return &freeList[T]{ch: make(chan T, 2*runtime.GOMAXPROCS(0)), newFn: newFn}
}

func (f *freeList[T]) get() T {
	select {
	case v := <-f.ch:
		return v
	default:
		return f.newFn()
	}
}

// put returns v for reuse, or leaves it to the garbage collector when the
// list is full.
func (f *freeList[T]) put(v T) {
	select {
	case f.ch <- v:
	default:
	}
}

// bodies are the request body buffers, shared by all anvil receivers.
var bodies = newFreeList(func() *bytes.Buffer { return new(bytes.Buffer) })
