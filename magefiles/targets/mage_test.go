package targets

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/migdrp/runpod/magefiles/tags"
)

// TestMageListsEveryTarget compiles the magefile the way users run it (go run mage.go) and
// checks that every tag directory has its verbs and that help names the environment.
func TestMageListsEveryTarget(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles the magefile")
	}
	root := repoRoot(t)
	out, err := exec.Command("go", "-C", root, "run", "mage.go", "-l").CombinedOutput()
	if err != nil {
		t.Fatalf("go run mage.go -l: %v\n%s", err, out)
	}
	all, err := tags.Discover(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, tag := range all {
		for _, verb := range []string{"build", "run", "stop", "logs", "plan", "update",
			"resetVolume", "restoreVolume", "clean", "push"} {
			if !strings.Contains(string(out), "  "+verb+":"+tag.Name+" ") {
				t.Errorf("mage -l lacks %s:%s", verb, tag.Name)
			}
		}
	}
	for _, fixed := range []string{"status", "generate", "build:all", "update:scripts",
		"ci:matrix"} {
		if !strings.Contains(string(out), "  "+fixed+" ") {
			t.Errorf("mage -l lacks %s", fixed)
		}
	}

	help, err := exec.Command("go", "-C", root, "run", "mage.go", "-h", "update:scripts").
		CombinedOutput()
	if err != nil || !strings.Contains(string(help), "mage update:scripts <tag>") ||
		!strings.Contains(string(help), "Environment: IMAGE_REPO") {
		t.Fatalf("mage -h update:scripts:\n%s %v", help, err)
	}
}

func TestFlagSettings(t *testing.T) {
	env := map[string]string{"A": "1", "B": "no", "C": "maybe"}
	s := &session{getenv: func(k string) string { return env[k] }}
	if b, err := s.flag("A"); err != nil || b == nil || !*b {
		t.Errorf("A=1: %v %v", b, err)
	}
	if b, err := s.flag("B"); err != nil || b == nil || *b {
		t.Errorf("B=no: %v %v", b, err)
	}
	if b, err := s.flag("UNSET"); err != nil || b != nil {
		t.Errorf("unset: %v %v", b, err)
	}
	if _, err := s.flag("C"); err == nil || !strings.Contains(err.Error(), "C=1") {
		t.Errorf("C=maybe must say what to use: %v", err)
	}
}
