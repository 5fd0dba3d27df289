//go:build !(amd64 || arm64 || 386 || ppc64le || s390x || riscv64 || loong64 || wasm)

package cardinalityguardprocessor // import "github.com/anvil/anvilcol/processor/cardinalityguardprocessor"

// sameKey is a == b (samekey_unaligned.go has the fast form).
func sameKey(a, b string) bool { return a == b }
