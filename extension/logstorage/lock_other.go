//go:build !unix

package logstorage // import "github.com/anvil/anvilcol/extension/logstorage"

import "os"

// lockDir only opens the lock file where flock is not available.
func lockDir(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
}
