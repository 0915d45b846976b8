package main

import (
	"bytes"
	"context"
	"debug/elf"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/migdrp/runpod/magefiles/workspace"
	"github.com/migdrp/runpod/magefiles/workspace/dirsync"
)

// buildBinary builds the command the way images get it: static, for linux.
func buildBinary(t *testing.T) string {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("the binary is built for linux and run here")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bin, err := workspace.BuildBinary(ctx, t.TempDir(), runtime.GOARCH)
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// runBinary runs the binary and returns stdout, stderr and the exit code.
func runBinary(t *testing.T, bin string, args ...string) (string, string, int) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		return stdout.String(), stderr.String(), exit.ExitCode()
	case err != nil:
		t.Fatalf("running %s: %v", bin, err)
	}
	return stdout.String(), stderr.String(), 0
}

func write(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}

func TestBinaryIsStatic(t *testing.T) {
	bin := buildBinary(t)
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Fatal("binary needs a dynamic loader; images without libc could not run it")
		}
	}
}

func TestSyncCommandSeedsThenReportsConflict(t *testing.T) {
	bin := buildBinary(t)
	tmpl, ws := filepath.Join(t.TempDir(), "tmpl"), filepath.Join(t.TempDir(), "ws")
	write(t, filepath.Join(tmpl, "start.sh"), "v1\n", 0o755)
	write(t, filepath.Join(tmpl, "scripts/get.sh"), "get v1\n", 0o755)

	// First start: the workspace is seeded.
	stdout, stderr, code := runBinary(t, bin, "sync", tmpl, ws)
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	if stdout != "workspace sync: 0 updated, 2 added, 0 removed, 0 kept, 0 conflicts\n" {
		t.Errorf("stdout %q", stdout)
	}
	if got, _ := os.ReadFile(filepath.Join(ws, "scripts/get.sh")); string(got) != "get v1\n" {
		t.Errorf("seeded scripts/get.sh holds %q", got)
	}

	// Both sides change a script: one summary line and one line for the conflict.
	write(t, filepath.Join(ws, "start.sh"), "mine\n", 0o755)
	write(t, filepath.Join(tmpl, "start.sh"), "v2\n", 0o755)
	stdout, stderr, code = runBinary(t, bin, "sync", tmpl, ws)
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if len(lines) != 2 ||
		lines[0] != "workspace sync: 0 updated, 0 added, 0 removed, 0 kept, 1 conflict" ||
		!strings.HasPrefix(lines[1], "conflict: start.sh: ") ||
		!strings.Contains(lines[1], "start.sh.template-new") {
		t.Errorf("stdout %q", stdout)
	}
	if got, _ := os.ReadFile(filepath.Join(ws, "start.sh")); string(got) != "mine\n" {
		t.Errorf("user's start.sh overwritten: %q", got)
	}
}

func TestSyncCommandJSONIsLastLine(t *testing.T) {
	bin := buildBinary(t)
	tmpl, ws := filepath.Join(t.TempDir(), "tmpl"), filepath.Join(t.TempDir(), "ws")
	write(t, filepath.Join(tmpl, "start.sh"), "v1\n", 0o755)

	stdout, stderr, code := runBinary(t, bin, "sync", "--json", tmpl, ws)
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	var sum dirsync.Summary
	if err := json.Unmarshal([]byte(strings.TrimSpace(stdout)), &sum); err != nil {
		t.Fatalf("stdout %q is not one JSON line: %v", stdout, err)
	}
	if len(sum.Added) != 1 || sum.Added[0] != "start.sh" {
		t.Errorf("summary %+v", sum)
	}
	if !strings.Contains(stderr, "workspace sync: 0 updated, 1 added") {
		t.Errorf("human summary missing from stderr %q", stderr)
	}
}

func TestSyncCommandFailsWithOneLine(t *testing.T) {
	bin := buildBinary(t)
	missing := filepath.Join(t.TempDir(), "missing")

	stdout, stderr, code := runBinary(t, bin, "sync", missing, t.TempDir())
	if code != 1 {
		t.Errorf("exit %d for a missing template, want 1", code)
	}
	if stdout != "" || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, missing) {
		t.Errorf("stdout %q, stderr %q: want one error line naming the template", stdout, stderr)
	}

	_, stderr, code = runBinary(t, bin, "sync", "only-one-dir")
	if code != 2 || !strings.HasPrefix(stderr, "usage: ") {
		t.Errorf("bad usage: exit %d, stderr %q", code, stderr)
	}
}
