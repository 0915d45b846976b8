//go:build !unix

package targets

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// lockTag makes a second run or update of the same container on this machine fail at once.
// Without flock the lock is a file created exclusively, which a killed process leaves behind;
// the message says where it is.
func lockTag(container string) (func(), error) {
	path := filepath.Join(os.TempDir(), "runpod-mage-"+container+".lock")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("another run or update of %s is in progress on this machine; "+
			"wait for it, or remove %s if none is", container, path)
	}
	if err != nil {
		return nil, err
	}
	_ = f.Close()
	return func() { _ = os.Remove(path) }, nil
}
