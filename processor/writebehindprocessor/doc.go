// Package writebehindprocessor implements the `write_behind` processor: it
// appends every request to a storage extension's log before it returns (so a
// receiver's 200 survives kill -9), hands the request on from memory, and
// deletes it once the next consumer accepted it; after a crash it replays
// what was never accepted. See README.md.
package writebehindprocessor // import "github.com/anvil/anvilcol/processor/writebehindprocessor"
