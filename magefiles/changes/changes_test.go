package changes

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// repo is a repository made for one test: a tag runpod-x, a second tag runpod-y, shared files
// in common/, and a .gitignore ignoring *.log.
type repo struct {
	t      *testing.T
	root   string
	tagDir string
}

func newRepo(t *testing.T, withGit bool) *repo {
	t.Helper()
	r := &repo{t: t, root: t.TempDir()}
	r.tagDir = filepath.Join(r.root, "runpod-x")
	r.write("runpod-x/Dockerfile", "FROM scratch\nCOPY common/ /opt/runpod/\n", 0o644)
	r.write("runpod-x/.dockerignore", "**/*.log\n", 0o644)
	r.write("runpod-x/supervisord.conf", "[supervisord]\n", 0o644)
	r.write("runpod-x/workspace/start.sh", "#!/bin/sh\necho start\n", 0o755)
	r.write("runpod-x/workspace/setup.sh", "#!/bin/sh\necho setup\n", 0o755)
	r.write("runpod-x/requirements.txt", "torch\n", 0o644)
	r.write("runpod-y/Dockerfile", "FROM scratch\n", 0o644)
	r.write("common/jupyter.sh", "#!/bin/sh\necho jupyter\n", 0o755)
	r.write(".gitignore", "*.log\n", 0o644)
	if withGit {
		r.git("init", "-q", "-b", "main")
		r.git("config", "user.name", "Test")
		r.git("config", "user.email", "test@example.invalid")
		r.git("config", "commit.gpgsign", "false")
		r.commit("first")
	}
	return r
}

func (r *repo) write(rel, content string, mode os.FileMode) {
	r.t.Helper()
	p := filepath.Join(r.root, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		r.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		r.t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		r.t.Fatal(err)
	}
}

func (r *repo) git(args ...string) string {
	r.t.Helper()
	return runGit(r.t, r.root, args...)
}

func runGit(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-C", dir}, args...)...)
	// The cleaned environment of the code under test, so that a test run from a git hook
	// does not commit into the project's repository.
	cmd.Env = append(newGit(dir).env, "GIT_CONFIG_NOSYSTEM=1", "HOME="+t.TempDir())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

func (r *repo) commit(msg string) string {
	r.t.Helper()
	r.git("add", "-A")
	r.git("commit", "-q", "-m", msg)
	return r.git("rev-parse", "HEAD")
}

// build returns the labels an image built from the tag's current files would carry.
func (r *repo) build() map[string]string {
	r.t.Helper()
	labels, err := ImageLabels(context.Background(), r.root, r.tagDir, r.files())
	if err != nil {
		r.t.Fatalf("ImageLabels: %v", err)
	}
	return labels
}

func (r *repo) files() []string {
	r.t.Helper()
	files, err := Inputs(r.tagDir)
	if err != nil {
		r.t.Fatalf("Inputs: %v", err)
	}
	return files
}

func (r *repo) detect(image map[string]string) Changes {
	r.t.Helper()
	ch, err := Detect(context.Background(), r.root, r.tagDir, r.files(), image, "env1", "env1")
	if err != nil {
		r.t.Fatalf("Detect: %v", err)
	}
	return ch
}

func TestClassify(t *testing.T) {
	cases := map[string]Kind{
		"Dockerfile":              Dockerfile,
		"./Dockerfile":            Dockerfile,
		"supervisord.conf":        Supervisord,
		"workspace/start.sh":      Workspace,
		"workspace/models/a.sh":   Workspace,
		"requirements.txt":        Other,
		"Dockerfile.dev":          Other,
		"workspacex/file":         Other,
		"../common/jupyter.sh":    Other,
		"../common/Dockerfile":    Other,
		"conf/supervisord.conf":   Other,
		"workspace/../Dockerfile": Dockerfile,
	}
	for rel, want := range cases {
		if got := Classify(rel); got != want {
			t.Errorf("Classify(%q) = %v, want %v", rel, got, want)
		}
	}
}

func TestDigestsChangeOnlyWithTheirKind(t *testing.T) {
	r := newRepo(t, false)
	before, err := Digests(r.tagDir, r.files())
	if err != nil {
		t.Fatal(err)
	}
	r.write("runpod-x/workspace/start.sh", "#!/bin/sh\necho changed\n", 0o755)
	after, err := Digests(r.tagDir, r.files())
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range Kinds {
		if changed := before[k] != after[k]; changed != (k == Workspace) {
			t.Errorf("%v digest changed=%v after editing a workspace script", k, changed)
		}
	}
}

func TestDigestsSeeTheExecutableBitButNotTheUmask(t *testing.T) {
	r := newRepo(t, false)
	digest := func() string {
		d, err := Digests(r.tagDir, r.files())
		if err != nil {
			t.Fatal(err)
		}
		return d[Other]
	}
	base := digest()
	r.write("runpod-x/requirements.txt", "torch\n", 0o664)
	if digest() != base {
		t.Error("a group-writable checkout hashes differently: images from another machine " +
			"would always look changed")
	}
	r.write("runpod-x/requirements.txt", "torch\n", 0o755)
	if digest() == base {
		t.Error("making a file executable did not change the digest")
	}
}

func TestDigestsDoNotDependOnWhereTheTagLives(t *testing.T) {
	a, b := newRepo(t, false), newRepo(t, false)
	if err := os.Rename(b.tagDir, filepath.Join(b.root, "runpod-renamed")); err != nil {
		t.Fatal(err)
	}
	b.tagDir = filepath.Join(b.root, "runpod-renamed")
	da, err := Digests(a.tagDir, a.files())
	if err != nil {
		t.Fatal(err)
	}
	db, err := Digests(b.tagDir, b.files())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(da, db) {
		t.Errorf("same files in two checkouts hash differently:\n%v\n%v", da, db)
	}
}

func TestDigestsAcceptPathsRelativeToTheRoot(t *testing.T) {
	r := newRepo(t, false)
	abs, err := Digests(r.tagDir, r.files())
	if err != nil {
		t.Fatal(err)
	}
	var rel []string
	for _, f := range r.files() {
		p, _ := filepath.Rel(r.root, f)
		rel = append(rel, p)
	}
	got, err := Digests(r.tagDir, rel)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(abs, got) {
		t.Error("relative and absolute paths of the same files hash differently")
	}
}

func TestDigestsReportAMissingFile(t *testing.T) {
	r := newRepo(t, false)
	_, err := Digests(r.tagDir, []string{"runpod-x/gone.txt"})
	if err == nil || !strings.Contains(err.Error(), "gone.txt") {
		t.Fatalf("want an error naming the missing file, got %v", err)
	}
}

func TestInputsLeaveOutDockerignoredFilesAndOtherTags(t *testing.T) {
	r := newRepo(t, true)
	r.write("runpod-x/debug.log", "noise\n", 0o644)
	var got []string
	for _, f := range r.files() {
		p, _ := filepath.Rel(r.root, f)
		got = append(got, filepath.ToSlash(p))
	}
	want := []string{"common/jupyter.sh", "runpod-x/.dockerignore", "runpod-x/Dockerfile",
		"runpod-x/requirements.txt",
		"runpod-x/supervisord.conf", "runpod-x/workspace/setup.sh",
		"runpod-x/workspace/start.sh"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Inputs = %v, want %v", got, want)
	}
}

func TestImageLabelsRecordRevisionDirtyAndDigests(t *testing.T) {
	r := newRepo(t, true)
	head := r.git("rev-parse", "HEAD")

	labels := r.build()
	if labels[LabelRevision] != head || labels[LabelDirty] != "false" {
		t.Errorf("clean tree: revision %q dirty %q, want %q false", labels[LabelRevision],
			labels[LabelDirty], head)
	}
	for _, k := range Kinds {
		if !strings.HasPrefix(labels[k.Label()], "sha256:") {
			t.Errorf("label %s = %q, want a sha256 digest", k.Label(), labels[k.Label()])
		}
	}

	// Changes elsewhere or ignored do not make this tag's image dirty.
	r.write("runpod-y/Dockerfile", "FROM other\n", 0o644)
	r.write("runpod-x/build.log", "noise\n", 0o644)
	if got := r.build()[LabelDirty]; got != "false" {
		t.Errorf("another tag's change or an ignored file made the image dirty=%s", got)
	}

	// An untracked script in the tag, or an edit in common/, does.
	r.write("runpod-x/workspace/new.sh", "#!/bin/sh\n", 0o755)
	if got := r.build()[LabelDirty]; got != "true" {
		t.Errorf("untracked script: dirty=%s, want true", got)
	}
	r.commit("new script")
	r.write("common/jupyter.sh", "#!/bin/sh\necho edited\n", 0o755)
	if got := r.build()[LabelDirty]; got != "true" {
		t.Errorf("edited common/ file: dirty=%s, want true", got)
	}
}

func TestImageLabelsOutsideGit(t *testing.T) {
	r := newRepo(t, false)
	labels := r.build()
	if labels[LabelRevision] != "" || labels[LabelDirty] != "true" {
		t.Errorf("outside git: revision %q dirty %q, want empty and true",
			labels[LabelRevision], labels[LabelDirty])
	}
	if labels[LabelDigestDockerfile] == "" {
		t.Error("outside git the digests are still needed")
	}
}
