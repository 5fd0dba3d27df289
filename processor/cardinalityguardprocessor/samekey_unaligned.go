//go:build amd64 || arm64 || 386 || ppc64le || s390x || riscv64 || loong64 || wasm

package cardinalityguardprocessor // import "github.com/anvil/anvilcol/processor/cardinalityguardprocessor"

import "unsafe"

// sameKey is a == b, inlined into the attribute loop: keys of 8 to 16 bytes
// (most attribute keys) compare with two overlapping 8-byte loads each, on
// the architectures where an unaligned load is a plain load. The string
// comparison it replaces is a call into the runtime for every attribute of
// every point (~19 ns a point of the cumulative benchmark's ~160).
func sameKey(a, b string) bool {
	n := len(a)
	if n != len(b) {
		return false
	}
	if n < 8 || n > 16 {
		return a == b
	}
	p, q := unsafe.Pointer(unsafe.StringData(a)), unsafe.Pointer(unsafe.StringData(b))
	return *(*uint64)(p) == *(*uint64)(q) &&
		*(*uint64)(unsafe.Add(p, n-8)) == *(*uint64)(unsafe.Add(q, n-8))
}
