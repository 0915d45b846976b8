package matrix

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/rhysd/actionlint"

	"github.com/migdrp/runpod/magefiles/tags"
)

// TestWorkflowsPassActionlint lints every file in .github/workflows/ with actionlint, including
// shellcheck on the run: scripts when shellcheck is installed.
func TestWorkflowsPassActionlint(t *testing.T) {
	root, err := tags.Root(".")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, ".github", "workflows")
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("reading the workflows: %v", err)
	}
	var files []string
	for _, e := range entries {
		if !e.IsDir() {
			files = append(files, filepath.Join(dir, e.Name()))
		}
	}
	if len(files) == 0 {
		t.Fatalf("no workflow in %s", dir)
	}

	shellcheck, err := exec.LookPath("shellcheck")
	if err != nil {
		t.Log("shellcheck not found: run: scripts are not checked")
		shellcheck = ""
	}
	var report bytes.Buffer
	linter, err := actionlint.NewLinter(&report, &actionlint.LinterOptions{
		Shellcheck: shellcheck,
		WorkingDir: root,
	})
	if err != nil {
		t.Fatal(err)
	}
	problems, err := linter.LintFiles(files, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("%s:%d:%d: %s [%s]", p.Filepath, p.Line, p.Column, p.Message, p.Kind)
	}
}

// TestActionlintCatchesMistakes guards the test above: the linter as configured there reports
// an unknown context and, with shellcheck, an unquoted expansion.
func TestActionlintCatchesMistakes(t *testing.T) {
	bad := []byte(`on: push
jobs:
  x:
    runs-on: ubuntu-latest
    steps:
      - run: echo ${{ matrixx.tag }}
      - run: rm -rf $DIR/*
`)
	shellcheck, _ := exec.LookPath("shellcheck")
	linter, err := actionlint.NewLinter(&bytes.Buffer{}, &actionlint.LinterOptions{
		Shellcheck: shellcheck,
		WorkingDir: t.TempDir(),
	})
	if err != nil {
		t.Fatal(err)
	}
	problems, err := linter.Lint("bad.yml", bad, nil)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]bool{}
	for _, p := range problems {
		kinds[p.Kind] = true
	}
	if !kinds["expression"] {
		t.Errorf("unknown context not reported: %v", problems)
	}
	if shellcheck != "" && !kinds["shellcheck"] {
		t.Errorf("unquoted expansion not reported by shellcheck: %v", problems)
	}
}
