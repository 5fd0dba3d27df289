//go:generate go tool mdatagen metadata.yaml

// Package logstorage implements the `log_storage` extension: a storage
// extension (the collector's storage.Extension, as used by the persistent
// sending queue) over an append-only segment log. Every Set, Delete or Batch
// is one CRC-framed record written with one write() and no fsync; keys and
// values of at most 256 bytes are held in memory, larger values are read
// from the segment files with one pread(); old segments are deleted once
// nothing in them is live (see README.md).
package logstorage // import "github.com/anvil/anvilcol/extension/logstorage"
