//go:build unix

package logstorage // import "github.com/anvil/anvilcol/extension/logstorage"

import (
	"fmt"
	"os"
	"syscall"
)

// lockDir takes an exclusive flock on path, so two processes never append
// to one client's segments. The lock goes with the process (kill -9 too).
func lockDir(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("%s is locked by another process: %w", path, err)
	}
	return f, nil
}
