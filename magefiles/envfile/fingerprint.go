package envfile

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
)

// ConfigDirEnv overrides the folder holding the fingerprint key.
const ConfigDirEnv = "RUNPOD_MAGE_CONFIG_DIR"

const keyFile = "fingerprint.key"

const keySize = 32

// Fingerprint is a hex HMAC-SHA256 of the file's variables in name order, so it changes when
// any value changes and not when lines move. It is keyed because it is stored in a container
// label anyone with engine access can read: an unkeyed hash would let them test guesses of a
// weak password offline.
func Fingerprint(f *File, key []byte) string {
	keys := make([]string, 0, len(f.Values))
	for k := range f.Values {
		keys = append(keys, k)
	}
	sort.Strings(keys)

	// Length prefixes keep distinct sets distinct (A=1,B=2 versus A="1\nB=2").
	mac := hmac.New(sha256.New, key)
	field := func(s string) {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		mac.Write(n[:])
		mac.Write([]byte(s))
	}
	for _, k := range keys {
		field(k)
		field(f.Values[k])
	}
	return hex.EncodeToString(mac.Sum(nil))
}

// LocalKey returns this machine's fingerprint key, creating it (32 random bytes, mode 0600) on
// first use under the user's config folder, or under $RUNPOD_MAGE_CONFIG_DIR when set.
func LocalKey() ([]byte, error) {
	dir := os.Getenv(ConfigDirEnv)
	if dir == "" {
		base, err := os.UserConfigDir()
		if err != nil {
			return nil, fmt.Errorf("finding a folder for the fingerprint key (set %s): %w",
				ConfigDirEnv, err)
		}
		dir = filepath.Join(base, "runpod-mage")
	}
	path := filepath.Join(dir, keyFile)

	key, err := readKey(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return key, err
	}

	// Create it under a temporary name and link it into place, so two runs starting at once
	// agree on one key instead of overwriting each other's.
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating the fingerprint key folder: %w", err)
	}
	key = make([]byte, keySize)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("generating the fingerprint key: %w", err)
	}
	tmp, err := os.CreateTemp(dir, keyFile+".*")
	if err != nil {
		return nil, fmt.Errorf("creating the fingerprint key: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(key); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("writing the fingerprint key: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return nil, fmt.Errorf("writing the fingerprint key: %w", err)
	}
	if err := os.Link(tmp.Name(), path); errors.Is(err, fs.ErrExist) {
		return readKey(path)
	} else if err != nil {
		return nil, fmt.Errorf("storing the fingerprint key: %w", err)
	}
	return key, nil
}

func readKey(path string) ([]byte, error) {
	key, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("reading the fingerprint key: %w", err)
	}
	if len(key) != keySize {
		return nil, fmt.Errorf("fingerprint key %s holds %d bytes instead of %d; delete it "+
			"and a new one is made (containers then count as changed once)", path, len(key),
			keySize)
	}
	return key, nil
}
