// Package e2e holds the end-to-end tests of anvilcol: they run the real built
// binary (bin/anvilcol, or $ANVILCOL_BIN) with the harness in internal/e2etest.
// The tests carry the `e2e` build tag; `make test` runs them after `make build`:
//
//	go test -tags e2e ./e2e/...
package e2e
