package images

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/migdrp/runpod/magefiles/tags"
)

// repoRoot is the repository's top folder, two levels above this package.
func repoRoot(t testing.TB) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// scripts lists the shell scripts of every tag directory and of common/: files ending in .sh
// or starting with a shell shebang.
func scripts(t testing.TB, root string) []string {
	t.Helper()
	var dirs []string
	found, err := tags.Discover(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, tag := range found {
		dirs = append(dirs, tag.Dir)
	}
	dirs = append(dirs, filepath.Join(root, "common"))

	var out []string
	for _, dir := range dirs {
		err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			if strings.HasSuffix(path, ".sh") || hasShellShebang(path) {
				out = append(out, path)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func hasShellShebang(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	head := make([]byte, 64)
	n, _ := f.Read(head)
	line, _, _ := strings.Cut(string(head[:n]), "\n")
	return strings.HasPrefix(line, "#!") && (strings.HasSuffix(line, "sh") ||
		strings.HasSuffix(line, "bash"))
}

func TestScriptsPassShellcheck(t *testing.T) {
	if _, err := exec.LookPath("shellcheck"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true needs shellcheck (apt-get install shellcheck)")
		}
		t.Skip("shellcheck is not installed")
	}
	root := repoRoot(t)
	list := scripts(t, root)
	if len(list) < 5 {
		t.Fatalf("found only %d scripts under runpod-*/ and common/: %v", len(list), list)
	}
	for _, path := range list {
		rel, _ := filepath.Rel(root, path)
		t.Run(rel, func(t *testing.T) {
			// Run from the script's folder so "shellcheck source=" paths resolve like in the repo.
			cmd := exec.Command("shellcheck", "--external-sources", "--severity=style",
				filepath.Base(path))
			cmd.Dir = filepath.Dir(path)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("shellcheck %s: %v\n%s", rel, err, out)
			}
		})
	}
}

func TestScriptsAreExecutable(t *testing.T) {
	root := repoRoot(t)
	for _, path := range scripts(t, root) {
		info, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		// Scripts under lib/ are sourced, not run.
		if filepath.Base(filepath.Dir(path)) == "lib" {
			continue
		}
		if info.Mode()&0o111 == 0 {
			rel, _ := filepath.Rel(root, path)
			t.Errorf("%s is not executable; supervisord and users run it directly", rel)
		}
	}
}
