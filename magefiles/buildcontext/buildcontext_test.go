package buildcontext_test

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/migdrp/runpod/magefiles/buildcontext"
)

// writeTree creates files under dir from a map of slash path to content. A path ending in "/"
// makes an empty directory.
func writeTree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for rel, body := range files {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if strings.HasSuffix(rel, "/") {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// tarEntry is what a test checks of one tar entry.
type tarEntry struct {
	hdr  *tar.Header
	body string
}

// readTar lists the entries of a tar in order, and by name.
func readTar(t *testing.T, r io.Reader) ([]string, map[string]tarEntry) {
	t.Helper()
	var names []string
	byName := map[string]tarEntry{}
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("reading tar: %v", err)
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if _, dup := byName[hdr.Name]; dup {
			t.Errorf("entry %s appears twice", hdr.Name)
		}
		names = append(names, hdr.Name)
		byName[hdr.Name] = tarEntry{hdr: hdr, body: string(body)}
	}
	return names, byName
}

func writeContext(t *testing.T, dir string, overlays []buildcontext.Overlay) (
	[]byte, buildcontext.Stats) {
	t.Helper()
	var buf bytes.Buffer
	st, err := buildcontext.Write(&buf, dir, overlays)
	if err != nil {
		t.Fatalf("Write: %v", err)
	}
	return buf.Bytes(), st
}

func TestFilesHonoursDockerignore(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		"Dockerfile": "FROM scratch\n",
		".dockerignore": strings.Join([]string{
			"# logs are noise, except the one the image ships",
			"#notes",
			"*.log",
			"!keep.log",
			"**/cache",
			"docs",
			"!docs/README.md",
			"  /private/  ",
			"!**/wanted",
		}, "\n"),
		"#notes":             "a file whose name looks like a comment line",
		"a.txt":              "a",
		"x.log":              "ignored at the root",
		"keep.log":           "re-included by an exception",
		"sub/y.log":          "*.log matches the root only",
		"cache/q":            "ignored by **/cache",
		"sub/cache/z":        "ignored by **/cache",
		"deep/a/cache/w":     "ignored by **/cache",
		"deep/a/b":           "kept",
		"docs/README.md":     "re-included from an ignored directory",
		"docs/other.md":      "ignored with its directory",
		"private/s":          "ignored: leading slash and blanks are trimmed",
		"private/wanted":     "docker does not enter private/ for a ** exception",
		"empty/":             "",
		"workspace/start.sh": "#!/bin/sh\n",
	})

	got, err := buildcontext.Files(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"#notes", ".dockerignore", "Dockerfile", "a.txt", "deep/a/b",
		"docs/README.md", "keep.log", "sub/y.log", "workspace/start.sh"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Files:\n got %q\nwant %q", got, want)
	}
}

func TestNeverSentEvenWhenReincluded(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		"Dockerfile": "FROM scratch\n",
		".dockerignore": strings.Join([]string{"!.git", "!**/.git", "!*.env", "!**/*.env",
			"!envs", "!backups", "!**/backups", "!.runpod"}, "\n"),
		".git/config":                     "[core]",
		"vendor/lib/.git":                 "gitdir: ../../.git/modules/lib",
		"vendor/lib/code.py":              "kept",
		".env":                            "TOKEN=secret",
		"runpod-comfyui.env":              "JUPYTER_PASSWORD=secret",
		"workspace/app.env":               "HF_TOKEN=secret",
		"runpod-comfyui.env.example":      "JUPYTER_PASSWORD=",
		"envs/runpod-comfyui.env.example": "in envs/",
		"backups/comfyui/1.tar.gz":        "backup",
		"workspace/backups/old":           "backup",
		".runpod/state":                   "tool state",
	})

	got, err := buildcontext.Files(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{".dockerignore", "Dockerfile", "runpod-comfyui.env.example",
		"vendor/lib/code.py"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Files:\n got %q\nwant %q", got, want)
	}
}

func TestDockerfileSentEvenWhenIgnored(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		"Dockerfile":    "FROM scratch\n",
		".dockerignore": "*\n",
		"other":         "ignored",
		"sub/file":      "ignored",
	})

	files, err := buildcontext.Files(dir)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{".dockerignore", "Dockerfile"}; !reflect.DeepEqual(files, want) {
		t.Errorf("Files = %q, want %q", files, want)
	}
	data, st := writeContext(t, dir, nil)
	names, byName := readTar(t, bytes.NewReader(data))
	if want := []string{".dockerignore", "Dockerfile"}; !reflect.DeepEqual(names, want) {
		t.Errorf("tar entries = %q, want %q", names, want)
	}
	if byName["Dockerfile"].body != "FROM scratch\n" {
		t.Errorf("Dockerfile content = %q", byName["Dockerfile"].body)
	}
	if st.Files != 2 || st.Bytes != int64(len(data)) {
		t.Errorf("Stats = %+v, want 2 files and %d bytes", st, len(data))
	}
}

func TestOverlaysLandUnderTarget(t *testing.T) {
	repo := t.TempDir()
	writeTree(t, repo, map[string]string{
		"runpod-comfyui/Dockerfile":      "FROM scratch\n",
		"runpod-comfyui/own/file":        "tag file",
		"common/start.sh":                "#!/bin/sh\n",
		"common/lib/log.sh":              "log() { :; }\n",
		"common/.git/HEAD":               "ref",
		"common/local.env":               "TOKEN=secret",
		"tools/runpod-workspace":         "binary",
		"runpod-fluxgym/Dockerfile":      "FROM scratch\n",
		"runpod-fluxgym/workspace/x":     "other tag",
		"envs/runpod-comfyui.env":        "TOKEN=secret",
		"runpod-comfyui/common/stale.sh": "replaced by the overlay",
	})
	tagDir := filepath.Join(repo, "runpod-comfyui")
	// A link the tag keeps so plain docker build has a hint where shared files live; the
	// overlay must take its place rather than send a dangling link next to the files.
	if err := os.Symlink("../tools", filepath.Join(tagDir, "bin")); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(repo, "common/start.sh"), 0o755); err != nil {
		t.Fatal(err)
	}
	overlays := []buildcontext.Overlay{
		{Source: filepath.Join(repo, "common"), Target: "common"},
		{Source: filepath.Join(repo, "tools/runpod-workspace"),
			Target: "bin/tools/runpod-workspace"},
	}

	data, st := writeContext(t, tagDir, overlays)
	names, byName := readTar(t, bytes.NewReader(data))
	want := []string{"Dockerfile", "own/", "own/file", "common/", "common/lib/",
		"common/lib/log.sh", "common/start.sh", "bin/", "bin/tools/",
		"bin/tools/runpod-workspace"}
	if !reflect.DeepEqual(names, want) {
		t.Fatalf("tar entries:\n got %q\nwant %q", names, want)
	}
	if got := byName["common/start.sh"]; got.body != "#!/bin/sh\n" ||
		got.hdr.Mode&0o111 == 0 {
		t.Errorf("common/start.sh: body %q mode %o, want the script, executable", got.body,
			got.hdr.Mode)
	}
	if got := byName["bin/tools/runpod-workspace"].body; got != "binary" {
		t.Errorf("single-file overlay body = %q", got)
	}
	for _, d := range []string{"bin/", "bin/tools/"} {
		if h := byName[d].hdr; h.Typeflag != tar.TypeDir || h.Mode != 0o755 {
			t.Errorf("%s: type %c mode %o, want a 0755 directory", d, h.Typeflag, h.Mode)
		}
	}
	if st.Files != 5 {
		t.Errorf("Stats.Files = %d, want 5", st.Files)
	}
}

func TestOverlayTargetsAreChecked(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"Dockerfile": "FROM scratch\n", "src/f": "f"})
	src := filepath.Join(dir, "src")
	for _, target := range []string{"", "/abs", "../up", "a/../b", "envs/x", "a.env",
		"backups"} {
		_, err := buildcontext.Write(io.Discard, dir,
			[]buildcontext.Overlay{{Source: src, Target: target}})
		if err == nil {
			t.Errorf("target %q accepted", target)
		}
	}
	_, err := buildcontext.Write(io.Discard, dir, []buildcontext.Overlay{
		{Source: src, Target: "common"}, {Source: src, Target: "common"}})
	if err == nil || !strings.Contains(err.Error(), "both target") {
		t.Errorf("two overlays on one target: err = %v, want a refusal", err)
	}
	_, err = buildcontext.Write(io.Discard, dir, []buildcontext.Overlay{
		{Source: filepath.Join(dir, "missing"), Target: "common"}})
	if err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("missing source: err = %v, want an error naming it", err)
	}
}

func TestWriteKeepsModesLinksAndTimes(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		"Dockerfile":         "FROM scratch\n",
		"workspace/start.sh": "#!/bin/sh\necho hi\n",
		"workspace/notes":    "plain",
	})
	script := filepath.Join(dir, "workspace/start.sh")
	if err := os.Chmod(script, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("start.sh", filepath.Join(dir, "workspace/run")); err != nil {
		t.Fatal(err)
	}
	// A link out of the context stays a link, as docker sends it.
	if err := os.Symlink("/etc/passwd", filepath.Join(dir, "outside")); err != nil {
		t.Fatal(err)
	}
	mtime := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	if err := os.Chtimes(script, mtime, mtime); err != nil {
		t.Fatal(err)
	}

	data, _ := writeContext(t, dir, nil)
	_, byName := readTar(t, bytes.NewReader(data))
	h := byName["workspace/start.sh"].hdr
	if h == nil {
		t.Fatal("workspace/start.sh missing")
	}
	if h.Mode != 0o755 || !h.ModTime.Equal(mtime) {
		t.Errorf("start.sh: mode %o mtime %v, want 755 and %v", h.Mode, h.ModTime, mtime)
	}
	if m := byName["workspace/notes"].hdr.Mode; m != 0o644 {
		t.Errorf("notes: mode %o, want 644", m)
	}
	for name, target := range map[string]string{"workspace/run": "start.sh",
		"outside": "/etc/passwd"} {
		h := byName[name].hdr
		if h == nil || h.Typeflag != tar.TypeSymlink || h.Linkname != target {
			t.Errorf("%s: %+v, want a symlink to %s", name, h, target)
		}
	}
	for name, e := range byName {
		if e.hdr.Uid != 0 || e.hdr.Gid != 0 || e.hdr.Uname != "" || e.hdr.Gname != "" {
			t.Errorf("%s: owner %d:%d %q:%q, want 0:0 without names", name, e.hdr.Uid,
				e.hdr.Gid, e.hdr.Uname, e.hdr.Gname)
		}
	}
}

func TestWriteIsReproducible(t *testing.T) {
	repo := t.TempDir()
	files := map[string]string{"runpod-x/Dockerfile": "FROM scratch\n", "common/a": "a"}
	for i := range 50 {
		files[fmt.Sprintf("runpod-x/workspace/d%d/f%d", i%7, i)] = strings.Repeat("x", i)
	}
	writeTree(t, repo, files)
	tagDir := filepath.Join(repo, "runpod-x")
	overlays := []buildcontext.Overlay{{Source: filepath.Join(repo, "common"), Target: "common"}}

	first, _ := writeContext(t, tagDir, overlays)
	// Reading every file changes access times; that must not change the context.
	if _, err := buildcontext.Files(tagDir); err != nil {
		t.Fatal(err)
	}
	second, _ := writeContext(t, tagDir, overlays)
	if !bytes.Equal(first, second) {
		t.Errorf("two writes of the same tree differ (%d and %d bytes)", len(first),
			len(second))
	}
}

func TestReaderStreamsLargeTree(t *testing.T) {
	const files, size = 1000, 64 << 10
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"Dockerfile": "FROM scratch\n"})
	body := bytes.Repeat([]byte("0123456789abcdef"), size/16)
	for i := range files {
		p := filepath.Join(dir, fmt.Sprintf("data/%02d/%04d.bin", i%10, i))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, body, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	r, stats := buildcontext.Reader(dir, nil)
	n, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{r}, make([]byte, 8<<10))
	if err != nil {
		t.Fatalf("reading the context: %v", err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)

	st := stats()
	if st.Files != files+1 || st.Bytes != n {
		t.Errorf("Stats = %+v, want %d files and the %d bytes read", st, files+1, n)
	}
	if n < files*size {
		t.Errorf("read %d bytes, less than the %d bytes of content", n, files*size)
	}
	// Packing 64 MiB must not allocate anything near that: the files are streamed.
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > files*size/4 {
		t.Errorf("streaming %d bytes allocated %d bytes", n, alloc)
	}
	t.Logf("streamed %d files, %d bytes, %d bytes allocated", st.Files, n,
		after.TotalAlloc-before.TotalAlloc)
}

func TestReaderReportsPackingErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "runpod-gone")
	r, _ := buildcontext.Reader(missing, nil)
	defer r.Close()
	_, err := io.ReadAll(r)
	if err == nil || !strings.Contains(err.Error(), "runpod-gone") {
		t.Errorf("reading the context of a missing tag: err = %v, want one naming it", err)
	}
}

func TestReaderCloseStopsPacking(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"Dockerfile": "FROM scratch\n",
		"big": strings.Repeat("x", 1<<20)})
	r, _ := buildcontext.Reader(dir, nil)
	if _, err := r.Read(make([]byte, 512)); err != nil {
		t.Fatal(err)
	}
	goroutines := runtime.NumGoroutine()
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	// The packing goroutine ends once its next write fails on the closed pipe.
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() >= goroutines && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if runtime.NumGoroutine() >= goroutines {
		t.Errorf("packing goroutine still running after Close")
	}
}
