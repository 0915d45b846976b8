package dirsync

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"syscall"
	"testing"
	"time"
)

// file is one file of a test tree: content and permission bits (0644 when zero).
type file struct {
	content string
	mode    fs.FileMode
}

func writeTree(t *testing.T, dir string, files map[string]file) {
	t.Helper()
	for p, f := range files {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		mode := f.mode
		if mode == 0 {
			mode = 0o644
		}
		if err := os.WriteFile(full, []byte(f.content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(full, mode); err != nil {
			t.Fatal(err)
		}
	}
}

func removeFile(t *testing.T, path string) {
	t.Helper()
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
}

// assertFile checks content and mode of a workspace file.
func assertFile(t *testing.T, path string, want file) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading %s: %v", path, err)
	}
	if string(got) != want.content {
		t.Errorf("%s holds %q, want %q", path, got, want.content)
	}
	if want.mode == 0 {
		want.mode = 0o644
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != want.mode {
		t.Errorf("%s has mode %04o, want %04o", path, info.Mode().Perm(), want.mode)
	}
}

func assertMissing(t *testing.T, path string) {
	t.Helper()
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%s exists, want it absent (err %v)", path, err)
	}
}

func mustSync(t *testing.T, tmpl, ws string) Summary {
	t.Helper()
	sum, err := Sync(tmpl, ws)
	if err != nil {
		t.Fatalf("Sync: %v", err)
	}
	return sum
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

func dirs(t *testing.T) (tmpl, ws string) {
	return filepath.Join(t.TempDir(), "template"), filepath.Join(t.TempDir(), "workspace")
}

func TestSyncSeedsEmptyWorkspace(t *testing.T) {
	tmpl, ws := dirs(t)
	files := map[string]file{
		"start.sh":                {"#!/bin/sh\necho start\n", 0o755},
		"README.md":               {"read me\n", 0o644},
		"scripts/models/wan22.sh": {"#!/bin/sh\necho wan\n", 0o750},
	}
	writeTree(t, tmpl, files)

	sum := mustSync(t, tmpl, ws)

	assertSummary(t, sum, Summary{Added: []string{"README.md", "scripts/models/wan22.sh",
		"start.sh"}})
	for p, f := range files {
		assertFile(t, filepath.Join(ws, p), f)
	}
	raw, err := os.ReadFile(filepath.Join(ws, ManifestName))
	if err != nil {
		t.Fatalf("no manifest after seeding: %v", err)
	}
	var m manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("manifest: %v", err)
	}
	if len(m.Files) != 3 || m.Files["start.sh"].Mode != "0755" ||
		len(m.Files["start.sh"].Hash) != 64 {
		t.Errorf("manifest records %+v", m.Files)
	}
	if got := sum.String(); got != "0 updated, 3 added, 0 removed, 0 kept, 0 conflicts" {
		t.Errorf("String() = %q", got)
	}
}

func TestSyncTwiceIsNoOp(t *testing.T) {
	tmpl, ws := dirs(t)
	writeTree(t, tmpl, map[string]file{"start.sh": {"v1", 0o755}, "a/b.txt": {"b", 0}})
	mustSync(t, tmpl, ws)
	writeTree(t, ws, map[string]file{"start.sh": {"mine", 0o755}})
	mustSync(t, tmpl, ws)

	// Backdate everything, so any rewrite shows as a new modification time.
	old := time.Now().Add(-time.Hour).Truncate(time.Second)
	for _, p := range []string{"start.sh", "a/b.txt", ManifestName} {
		if err := os.Chtimes(filepath.Join(ws, p), old, old); err != nil {
			t.Fatal(err)
		}
	}
	sum := mustSync(t, tmpl, ws)

	assertSummary(t, sum, Summary{Kept: []string{"start.sh"}})
	if sum.Changed() {
		t.Errorf("second sync changed files: %+v", sum)
	}
	for _, p := range []string{"start.sh", "a/b.txt", ManifestName} {
		info, err := os.Stat(filepath.Join(ws, p))
		if err != nil {
			t.Fatal(err)
		}
		if !info.ModTime().Equal(old) {
			t.Errorf("%s was rewritten by a sync with nothing to do", p)
		}
	}
}

// TestSyncRules starts every case from a workspace seeded with the same template, lets the
// user and the template change, syncs and checks files and summary.
func TestSyncRules(t *testing.T) {
	base := map[string]file{
		"start.sh":          {"#!/bin/sh\nv1\n", 0o755},
		"scripts/models.sh": {"models v1\n", 0o755},
		"notes.txt":         {"notes v1\n", 0o644},
	}
	cases := []struct {
		name     string
		user     func(t *testing.T, ws string)
		template func(t *testing.T, tmpl string)
		want     Summary
		files    map[string]file // expected in the workspace
		missing  []string
	}{{
		name: "template changed, user did not: replaced",
		template: func(t *testing.T, tmpl string) {
			writeTree(t, tmpl, map[string]file{"start.sh": {"#!/bin/sh\nv2\n", 0o755}})
		},
		want:    Summary{Updated: []string{"start.sh"}},
		files:   map[string]file{"start.sh": {"#!/bin/sh\nv2\n", 0o755}},
		missing: []string{"start.sh" + ConflictSuffix},
	}, {
		name: "user changed, template did not: kept",
		user: func(t *testing.T, ws string) {
			writeTree(t, ws, map[string]file{"notes.txt": {"my notes\n", 0o600}})
		},
		want:    Summary{Kept: []string{"notes.txt"}},
		files:   map[string]file{"notes.txt": {"my notes\n", 0o600}},
		missing: []string{"notes.txt" + ConflictSuffix},
	}, {
		name: "both changed: user's kept, template's beside it",
		user: func(t *testing.T, ws string) {
			writeTree(t, ws, map[string]file{"scripts/models.sh": {"my models\n", 0o755}})
		},
		template: func(t *testing.T, tmpl string) {
			writeTree(t, tmpl, map[string]file{"scripts/models.sh": {"models v2\n", 0o755}})
		},
		want: Summary{Conflicts: []string{"scripts/models.sh"}},
		files: map[string]file{
			"scripts/models.sh":                  {"my models\n", 0o755},
			"scripts/models.sh" + ConflictSuffix: {"models v2\n", 0o755},
		},
	}, {
		name: "new in the template: added in a new nested directory",
		template: func(t *testing.T, tmpl string) {
			writeTree(t, tmpl, map[string]file{"setup/wan/get.sh": {"get\n", 0o755}})
		},
		want:  Summary{Added: []string{"setup/wan/get.sh"}},
		files: map[string]file{"setup/wan/get.sh": {"get\n", 0o755}},
	}, {
		name: "new in the template where the user has a different file: conflict",
		user: func(t *testing.T, ws string) {
			writeTree(t, ws, map[string]file{"extra.sh": {"mine\n", 0o644}})
		},
		template: func(t *testing.T, tmpl string) {
			writeTree(t, tmpl, map[string]file{"extra.sh": {"theirs\n", 0o755}})
		},
		want: Summary{Conflicts: []string{"extra.sh"}},
		files: map[string]file{
			"extra.sh":                  {"mine\n", 0o644},
			"extra.sh" + ConflictSuffix: {"theirs\n", 0o755},
		},
	}, {
		name: "new in the template where the user has the same file: adopted",
		user: func(t *testing.T, ws string) {
			writeTree(t, ws, map[string]file{"extra.sh": {"same\n", 0o755}})
		},
		template: func(t *testing.T, tmpl string) {
			writeTree(t, tmpl, map[string]file{"extra.sh": {"same\n", 0o755}})
		},
		want:    Summary{},
		files:   map[string]file{"extra.sh": {"same\n", 0o755}},
		missing: []string{"extra.sh" + ConflictSuffix},
	}, {
		name: "removed from the template, untouched: removed with its empty directory",
		template: func(t *testing.T, tmpl string) {
			removeFile(t, filepath.Join(tmpl, "scripts/models.sh"))
		},
		want:    Summary{Removed: []string{"scripts/models.sh"}},
		missing: []string{"scripts/models.sh", "scripts"},
	}, {
		name: "removed from the template, changed by the user: kept and reported",
		user: func(t *testing.T, ws string) {
			writeTree(t, ws, map[string]file{"scripts/models.sh": {"my models\n", 0o755}})
		},
		template: func(t *testing.T, tmpl string) {
			removeFile(t, filepath.Join(tmpl, "scripts/models.sh"))
		},
		want: Summary{Kept: []string{"scripts/models.sh"},
			KeptRemoved: []string{"scripts/models.sh"}},
		files: map[string]file{"scripts/models.sh": {"my models\n", 0o755}},
	}, {
		name:  "deleted by the user: put back",
		user:  func(t *testing.T, ws string) { removeFile(t, filepath.Join(ws, "start.sh")) },
		want:  Summary{Added: []string{"start.sh"}},
		files: map[string]file{"start.sh": {"#!/bin/sh\nv1\n", 0o755}},
	}, {
		name: "executable bit set in the template: follows",
		template: func(t *testing.T, tmpl string) {
			writeTree(t, tmpl, map[string]file{"notes.txt": {"notes v1\n", 0o755}})
		},
		want:  Summary{Updated: []string{"notes.txt"}},
		files: map[string]file{"notes.txt": {"notes v1\n", 0o755}},
	}, {
		name: "executable bit cleared in the template, content changed: follows",
		template: func(t *testing.T, tmpl string) {
			writeTree(t, tmpl, map[string]file{"start.sh": {"now data\n", 0o644}})
		},
		want:  Summary{Updated: []string{"start.sh"}},
		files: map[string]file{"start.sh": {"now data\n", 0o644}},
	}, {
		name: "user removed the executable bit of an untouched script: restored",
		user: func(t *testing.T, ws string) {
			if err := os.Chmod(filepath.Join(ws, "start.sh"), 0o644); err != nil {
				t.Fatal(err)
			}
		},
		want:  Summary{Updated: []string{"start.sh"}},
		files: map[string]file{"start.sh": {"#!/bin/sh\nv1\n", 0o755}},
	}, {
		name: "user data outside the template: never touched",
		user: func(t *testing.T, ws string) {
			writeTree(t, ws, map[string]file{
				"models/big.safetensors": {"weights", 0o600},
				"scripts/mine.sh":        {"mine", 0o700},
			})
			// A reader of this FIFO would block forever: the sync must not open it.
			if err := syscall.Mkfifo(filepath.Join(ws, "outputs.fifo"), 0o644); err != nil {
				t.Fatal(err)
			}
		},
		template: func(t *testing.T, tmpl string) {
			removeFile(t, filepath.Join(tmpl, "scripts/models.sh"))
		},
		want: Summary{Removed: []string{"scripts/models.sh"}},
		files: map[string]file{
			"models/big.safetensors": {"weights", 0o600},
			"scripts/mine.sh":        {"mine", 0o700},
		},
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tmpl, ws := dirs(t)
			writeTree(t, tmpl, base)
			mustSync(t, tmpl, ws)
			if c.user != nil {
				c.user(t, ws)
			}
			if c.template != nil {
				c.template(t, tmpl)
			}

			done := make(chan Summary, 1)
			go func() { done <- mustSync(t, tmpl, ws) }()
			var sum Summary
			select {
			case sum = <-done:
			case <-time.After(20 * time.Second):
				t.Fatal("sync hangs: it opened a file outside the template")
			}

			assertSummary(t, sum, c.want)
			for p, f := range c.files {
				assertFile(t, filepath.Join(ws, p), f)
			}
			for _, p := range c.missing {
				assertMissing(t, filepath.Join(ws, p))
			}

			// The next sync has nothing left to do: a conflict is reported once, then the
			// file counts as the user's.
			again := mustSync(t, tmpl, ws)
			if again.Changed() || len(again.KeptRemoved) > 0 {
				t.Errorf("second sync still acts: %+v", again)
			}
		})
	}
}

func TestSyncAdoptsWorkspaceWithoutManifest(t *testing.T) {
	tmpl, ws := dirs(t)
	v1 := map[string]file{
		"start.sh":  {"start v1\n", 0o755},
		"notes.txt": {"notes v1\n", 0},
	}
	writeTree(t, tmpl, v1)
	// A volume seeded by an older image: a plain copy of the template, one file edited since.
	writeTree(t, ws, v1)
	writeTree(t, ws, map[string]file{"notes.txt": {"my notes\n", 0}})

	sum := mustSync(t, tmpl, ws)

	assertSummary(t, sum, Summary{Conflicts: []string{"notes.txt"}})
	assertFile(t, filepath.Join(ws, "notes.txt"), file{"my notes\n", 0})
	assertFile(t, filepath.Join(ws, "notes.txt"+ConflictSuffix), file{"notes v1\n", 0})
	if _, err := os.Stat(filepath.Join(ws, ManifestName)); err != nil {
		t.Fatalf("no manifest after adopting: %v", err)
	}

	// The adopted file now follows the template.
	writeTree(t, tmpl, map[string]file{"start.sh": {"start v2\n", 0o755}})
	sum = mustSync(t, tmpl, ws)
	assertSummary(t, sum, Summary{Updated: []string{"start.sh"}, Kept: []string{"notes.txt"}})
	assertFile(t, filepath.Join(ws, "start.sh"), file{"start v2\n", 0o755})
}

func TestSyncTreatsBrokenManifestAsMissing(t *testing.T) {
	tmpl, ws := dirs(t)
	writeTree(t, tmpl, map[string]file{"start.sh": {"v1", 0o755}})
	mustSync(t, tmpl, ws)
	writeTree(t, ws, map[string]file{ManifestName: {"{not json", 0}})
	writeTree(t, ws, map[string]file{"start.sh": {"mine", 0o755}})
	writeTree(t, tmpl, map[string]file{"start.sh": {"v2", 0o755}})

	sum := mustSync(t, tmpl, ws)

	// Without a trustworthy record the user's file is never overwritten.
	assertSummary(t, sum, Summary{Conflicts: []string{"start.sh"}})
	assertFile(t, filepath.Join(ws, "start.sh"), file{"mine", 0o755})
}

func TestSyncIgnoresManifestPathsOutsideWorkspace(t *testing.T) {
	tmpl, ws := dirs(t)
	writeTree(t, tmpl, map[string]file{"start.sh": {"v1", 0o755}})
	mustSync(t, tmpl, ws)
	outside := filepath.Join(filepath.Dir(ws), "precious.txt")
	writeTree(t, filepath.Dir(ws), map[string]file{"precious.txt": {"v1", 0}})
	raw, err := os.ReadFile(filepath.Join(ws, ManifestName))
	if err != nil {
		t.Fatal(err)
	}
	var m manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	m.Files["../precious.txt"] = m.Files["start.sh"]
	m.Files["/tmp/precious.txt"] = m.Files["start.sh"]
	raw, _ = json.Marshal(m)
	writeTree(t, ws, map[string]file{ManifestName: {string(raw), 0}})

	sum := mustSync(t, tmpl, ws)

	assertSummary(t, sum, Summary{})
	assertFile(t, outside, file{"v1", 0})
}

func TestSyncFailsClearlyWithoutTemplate(t *testing.T) {
	_, ws := dirs(t)
	_, err := Sync(filepath.Join(t.TempDir(), "nope"), ws)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Sync without template: err = %v, want a not-exist error", err)
	}
}

func TestSummaryString(t *testing.T) {
	s := Summary{Updated: []string{"a", "b", "c"}, Added: []string{"d"}, Kept: []string{"e", "f"},
		Conflicts: []string{"g"}}
	if got, want := s.String(), "3 updated, 1 added, 0 removed, 2 kept, 1 conflict"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}
