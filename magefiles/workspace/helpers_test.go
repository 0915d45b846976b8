package workspace

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// file is one file of a test tree or volume: content and permission bits.
type file struct {
	content string
	mode    os.FileMode
}

func writeTree(t *testing.T, dir string, files map[string]file) {
	t.Helper()
	for p, f := range files {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(f.content), f.mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(full, f.mode); err != nil {
			t.Fatal(err)
		}
	}
}

func assertSummary(t *testing.T, got, want Summary) {
	t.Helper()
	norm := func(s Summary) Summary {
		for _, l := range []*[]string{&s.Updated, &s.Added, &s.Removed, &s.Kept, &s.Conflicts,
			&s.KeptRemoved} {
			if len(*l) == 0 {
				*l = nil
			}
		}
		return s
	}
	if !reflect.DeepEqual(norm(got), norm(want)) {
		t.Errorf("summary\n got  %+v\n want %+v", got, want)
	}
}
