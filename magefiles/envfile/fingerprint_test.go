package envfile

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func load(t *testing.T, content string) *File {
	t.Helper()
	f, err := Load(writeFile(t, "runpod-x.env", content))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestFingerprintFollowsValuesNotOrder(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	base := Fingerprint(load(t, "A=1\nB=2\n"), key)

	if got := Fingerprint(load(t, "# reordered\nB=2\nA=1\n"), key); got != base {
		t.Errorf("reordering lines changed the fingerprint")
	}
	if got := Fingerprint(load(t, "A=1\nB=3\n"), key); got == base {
		t.Errorf("changing a value kept the fingerprint")
	}
	if got := Fingerprint(load(t, "A=1\nB=2\nC=\n"), key); got == base {
		t.Errorf("adding a variable kept the fingerprint")
	}
	if got := Fingerprint(load(t, "A=\"1\nB=2\"\n"), key); got == base {
		t.Errorf("a value holding another assignment collides")
	}
	if got := Fingerprint(load(t, "A=1\nB=2\n"), bytes.Repeat([]byte{8}, 32)); got == base {
		t.Errorf("the fingerprint does not depend on the key")
	}
	if len(base) != 64 {
		t.Errorf("fingerprint %q is not hex SHA-256", base)
	}
}

func TestLocalKeyIsCreatedOncePrivately(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "config")
	t.Setenv(ConfigDirEnv, dir)

	first, err := LocalKey()
	if err != nil {
		t.Fatal(err)
	}
	second, err := LocalKey()
	if err != nil {
		t.Fatal(err)
	}
	if len(first) != 32 || !bytes.Equal(first, second) {
		t.Errorf("key not stable: %x then %x", first, second)
	}
	info, err := os.Stat(filepath.Join(dir, "fingerprint.key"))
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("key mode %v, want 0600", info.Mode().Perm())
	}
	leftovers, _ := filepath.Glob(filepath.Join(dir, "fingerprint.key.*"))
	if len(leftovers) != 0 {
		t.Errorf("temporary files left: %q", leftovers)
	}

	// A damaged key is an error that says what to do, not a silent new key.
	if err := os.WriteFile(filepath.Join(dir, "fingerprint.key"), []byte("short"),
		0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LocalKey(); err == nil {
		t.Errorf("a damaged key was accepted")
	}
}
