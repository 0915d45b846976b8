//go:build unix

package targets

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// lockTag makes a second run or update of the same container on this machine fail at once
// instead of racing the first one. The kernel drops the lock when the process ends, however
// it ends.
func lockTag(container string) (func(), error) {
	path := filepath.Join(os.TempDir(), "runpod-mage-"+container+".lock")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("another run or update of %s is in progress on this machine; "+
			"wait for it or stop it", container)
	}
	return func() { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN); _ = f.Close() }, nil
}
