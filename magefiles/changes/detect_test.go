package changes

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// wantChanged fails unless exactly the kinds in want changed, each with the files given
// (nil: decided by digests, no files named).
func wantChanged(t *testing.T, ch Changes, want map[Kind][]string) {
	t.Helper()
	if len(ch.Kinds) != len(want) {
		t.Errorf("changed kinds %v, want %v (why: %s)", ch.Kinds, want, ch.Why)
		return
	}
	for k, files := range want {
		got, ok := ch.Kinds[k]
		if !ok || !reflect.DeepEqual(got, files) {
			t.Errorf("%v: files %q (changed=%v), want %q (why: %s)", k, got, ok, files, ch.Why)
		}
	}
}

func TestDetectNothingChanged(t *testing.T) {
	r := newRepo(t, true)
	image := r.build()
	ch := r.detect(image)
	if !ch.Nothing() || ch.Method != ByGit {
		t.Errorf("fresh image: %+v, want nothing changed, decided by git", ch)
	}
}

func TestDetectWithoutImage(t *testing.T) {
	r := newRepo(t, true)
	ch := r.detect(nil)
	if ch.Method != NoImage || ch.Nothing() {
		t.Errorf("no image: method %v nothing=%v", ch.Method, ch.Nothing())
	}
}

func TestDetectCommittedChangeSinceTheImage(t *testing.T) {
	r := newRepo(t, true)
	image := r.build()
	built := image[LabelRevision]
	r.write("runpod-x/Dockerfile", "FROM scratch\nCOPY common/ /opt/runpod/\nRUN true\n", 0o644)
	r.commit("dockerfile")
	r.write("runpod-x/requirements.txt", "torch\nnumpy\n", 0o644)
	r.commit("requirements")

	ch := r.detect(image)
	wantChanged(t, ch, map[Kind][]string{
		Dockerfile: {"runpod-x/Dockerfile"},
		Other:      {"runpod-x/requirements.txt"},
	})
	if ch.Method != ByGit || ch.Revision != built {
		t.Errorf("method %v revision %q, want git and %q", ch.Method, ch.Revision, built)
	}
	d := ch.Describe(Dockerfile)
	if !strings.Contains(d, built[:7]) || !strings.Contains(d, "runpod-x/Dockerfile") {
		t.Errorf("Describe = %q, want the revision and the file", d)
	}
}

func TestDetectUncommittedChange(t *testing.T) {
	r := newRepo(t, true)
	image := r.build()
	r.write("runpod-x/supervisord.conf", "[supervisord]\nnodaemon=true\n", 0o644)
	wantChanged(t, r.detect(image), map[Kind][]string{
		Supervisord: {"runpod-x/supervisord.conf"},
	})
}

func TestDetectUntrackedFile(t *testing.T) {
	r := newRepo(t, true)
	image := r.build()
	r.write("runpod-x/workspace/models/wan.sh", "#!/bin/sh\n", 0o755)
	wantChanged(t, r.detect(image), map[Kind][]string{
		Workspace: {"runpod-x/workspace/models/wan.sh"},
	})
}

func TestDetectIgnoredFileIsNoChange(t *testing.T) {
	r := newRepo(t, true)
	image := r.build()
	r.write("runpod-x/workspace/run.log", "noise\n", 0o644)
	if ch := r.detect(image); !ch.Nothing() {
		t.Errorf("an ignored file counted as a change: %v", ch.Kinds)
	}
}

func TestDetectChangeInAnotherTagIsNoChange(t *testing.T) {
	r := newRepo(t, true)
	image := r.build()
	r.write("runpod-y/Dockerfile", "FROM other\n", 0o644)
	r.commit("other tag")
	if ch := r.detect(image); !ch.Nothing() {
		t.Errorf("another tag's Dockerfile counted as a change: %v", ch.Kinds)
	}
}

func TestDetectCommonFilesAreOther(t *testing.T) {
	r := newRepo(t, true)
	image := r.build()
	r.write("common/jupyter.sh", "#!/bin/sh\necho new\n", 0o755)
	wantChanged(t, r.detect(image), map[Kind][]string{Other: {"common/jupyter.sh"}})
}

func TestDetectRenameCountsBothPaths(t *testing.T) {
	r := newRepo(t, true)
	image := r.build()

	// Staged, uncommitted rename from the scripts to the image's own files.
	r.git("mv", "runpod-x/workspace/setup.sh", "runpod-x/setup.sh")
	wantChanged(t, r.detect(image), map[Kind][]string{
		Workspace: {"runpod-x/workspace/setup.sh"},
		Other:     {"runpod-x/setup.sh"},
	})

	// The same rename committed.
	r.commit("move setup")
	wantChanged(t, r.detect(image), map[Kind][]string{
		Workspace: {"runpod-x/workspace/setup.sh"},
		Other:     {"runpod-x/setup.sh"},
	})
}

func TestDetectRenameWithinScripts(t *testing.T) {
	r := newRepo(t, true)
	image := r.build()
	r.git("mv", "runpod-x/workspace/setup.sh", "runpod-x/workspace/install.sh")
	r.commit("rename")
	wantChanged(t, r.detect(image), map[Kind][]string{
		Workspace: {"runpod-x/workspace/install.sh", "runpod-x/workspace/setup.sh"},
	})
}

func TestDetectPrefersDigestsWhenContentEqualsTheImage(t *testing.T) {
	r := newRepo(t, true)
	r.write("runpod-x/NOTES.md", "notes\n", 0o644)
	r.commit("notes")
	// The notes are not a build input (say .dockerignore leaves them out).
	var files []string
	for _, f := range r.files() {
		if !strings.HasSuffix(f, "NOTES.md") {
			files = append(files, f)
		}
	}
	image, err := ImageLabels(context.Background(), r.root, r.tagDir, files)
	if err != nil {
		t.Fatal(err)
	}
	r.write("runpod-x/NOTES.md", "more notes\n", 0o644)
	r.commit("edit notes")

	ch, err := Detect(context.Background(), r.root, r.tagDir, files, image, "", "")
	if err != nil {
		t.Fatal(err)
	}
	if !ch.Nothing() {
		t.Errorf("a file outside the build with unchanged digests counted: %v", ch.Kinds)
	}
	if !reflect.DeepEqual(ch.SameContent, []string{"runpod-x/NOTES.md"}) {
		t.Errorf("SameContent = %v, want the notes", ch.SameContent)
	}
}

func TestDetectImageBuiltFromUncommittedChangeThenReverted(t *testing.T) {
	r := newRepo(t, true)
	r.write("runpod-x/Dockerfile", "FROM scratch\nCOPY common/ /opt/runpod/\nRUN experiment\n", 0o644)
	image := r.build()
	if image[LabelDirty] != "true" {
		t.Fatal("image built from an uncommitted change is not marked dirty")
	}
	r.git("checkout", "--", "runpod-x/Dockerfile")

	// Git sees no difference with the revision, but the image holds the experiment.
	ch := r.detect(image)
	wantChanged(t, ch, map[Kind][]string{Dockerfile: nil})
	if ch.Method != ByGit || !ch.Dirty {
		t.Errorf("method %v dirty %v, want git and dirty", ch.Method, ch.Dirty)
	}
}

func TestDetectNotARepository(t *testing.T) {
	r := newRepo(t, true)
	image := r.build()
	if err := os.RemoveAll(filepath.Join(r.root, ".git")); err != nil {
		t.Fatal(err)
	}
	r.write("runpod-x/Dockerfile", "FROM scratch\nCOPY common/ /opt/runpod/\nRUN true\n", 0o644)

	ch := r.detect(image)
	wantChanged(t, ch, map[Kind][]string{Dockerfile: nil})
	if ch.Method != ByDigests || !strings.Contains(ch.Why, "not a git repository") {
		t.Errorf("method %v why %q, want digests because not a repository", ch.Method, ch.Why)
	}
}

func TestDetectShallowCloneWithoutTheRevision(t *testing.T) {
	r := newRepo(t, true)
	image := r.build()
	r.write("runpod-x/workspace/start.sh", "#!/bin/sh\necho v2\n", 0o755)
	r.commit("v2")

	clone := filepath.Join(t.TempDir(), "clone")
	runGit(t, r.root, "clone", "-q", "--depth", "1", "file://"+r.root, clone)
	c := &repo{t: t, root: clone, tagDir: filepath.Join(clone, "runpod-x")}

	ch := c.detect(image)
	wantChanged(t, ch, map[Kind][]string{Workspace: nil})
	if d := ch.Describe(Workspace); !strings.Contains(d, "by digest") ||
		!strings.Contains(d, image[LabelRevision][:7]) {
		t.Errorf("Describe = %q, want the revision and that digests decided", d)
	}
	if ch.Method != ByDigests || !strings.Contains(ch.Why, "shallow clone") ||
		!strings.Contains(ch.Why, image[LabelRevision][:7]) {
		t.Errorf("method %v why %q, want digests because of the shallow clone", ch.Method,
			ch.Why)
	}
}

func TestDetectRevisionFromAnotherMachine(t *testing.T) {
	r := newRepo(t, true)
	image := r.build()
	image[LabelRevision] = strings.Repeat("ab", 20)
	ch := r.detect(image)
	if !ch.Nothing() || ch.Method != ByDigests ||
		!strings.Contains(ch.Why, "not in this repository") {
		t.Errorf("unknown revision: nothing=%v method %v why %q", ch.Nothing(), ch.Method,
			ch.Why)
	}
}

func TestDetectGarbledRevisionLabel(t *testing.T) {
	r := newRepo(t, true)
	image := r.build()
	image[LabelRevision] = "--output=/tmp/x"
	ch := r.detect(image)
	if ch.Method != ByDigests || !strings.Contains(ch.Why, "not a git revision") {
		t.Errorf("garbled revision: method %v why %q", ch.Method, ch.Why)
	}
}

func TestDetectWithoutGitInstalled(t *testing.T) {
	r := newRepo(t, true)
	image := r.build()
	files := r.files()
	r.write("runpod-x/Dockerfile", "FROM scratch\nCOPY common/ /opt/runpod/\nRUN true\n", 0o644)
	t.Setenv("PATH", t.TempDir())

	ch, err := Detect(context.Background(), r.root, r.tagDir, files, image, "", "")
	if err != nil {
		t.Fatal(err)
	}
	wantChanged(t, ch, map[Kind][]string{Dockerfile: nil})
	if ch.Method != ByDigests || !strings.Contains(ch.Why, "git is not installed") {
		t.Errorf("method %v why %q", ch.Method, ch.Why)
	}
	if _, err := Inputs(r.tagDir); err != nil {
		t.Errorf("Inputs without git: %v", err)
	}
	if _, err := ImageLabels(context.Background(), r.root, r.tagDir, files); err != nil {
		t.Errorf("ImageLabels without git: %v", err)
	}
}

func TestDetectDigestsDecideWhenTheRevisionLabelIsMissing(t *testing.T) {
	r := newRepo(t, true)
	image := r.build()
	delete(image, LabelRevision)
	delete(image, LabelDirty)
	r.write("runpod-x/workspace/start.sh", "#!/bin/sh\necho v2\n", 0o755)

	ch := r.detect(image)
	wantChanged(t, ch, map[Kind][]string{Workspace: nil})
	if ch.Method != ByDigests || !strings.Contains(ch.Why, "no git revision") || ch.Unknown {
		t.Errorf("method %v unknown %v why %q", ch.Method, ch.Unknown, ch.Why)
	}
}

func TestDetectImageWithoutLabels(t *testing.T) {
	r := newRepo(t, true)
	ch := r.detect(map[string]string{"org.opencontainers.image.title": "x"})
	if !ch.Unknown || len(ch.UnknownKinds) != len(Kinds) || ch.Nothing() ||
		!strings.Contains(ch.Why, "cannot be told") {
		t.Errorf("image without labels: unknown %v kinds %v why %q", ch.Unknown,
			ch.UnknownKinds, ch.Why)
	}
}

func TestDetectEnvOnlyChange(t *testing.T) {
	r := newRepo(t, true)
	image := r.build()
	ch, err := Detect(context.Background(), r.root, r.tagDir, r.files(), image, "sha256:new",
		"sha256:old")
	if err != nil {
		t.Fatal(err)
	}
	if !ch.Env || len(ch.Kinds) != 0 || ch.Nothing() {
		t.Errorf("env-only change: env %v kinds %v", ch.Env, ch.Kinds)
	}
}

func TestDetectFromASubdirectoryOfTheRepository(t *testing.T) {
	top := newRepo(t, true)
	sub := &repo{t: t, root: filepath.Join(top.root, "images")}
	sub.tagDir = filepath.Join(sub.root, "runpod-x")
	sub.write("runpod-x/Dockerfile", "FROM scratch\n", 0o644)
	sub.write("runpod-x/workspace/start.sh", "#!/bin/sh\n", 0o755)
	top.commit("images")
	image := sub.build()
	sub.write("runpod-x/workspace/start.sh", "#!/bin/sh\necho v2\n", 0o755)

	ch := sub.detect(image)
	wantChanged(t, ch, map[Kind][]string{Workspace: {"runpod-x/workspace/start.sh"}})
	if ch.Method != ByGit {
		t.Errorf("method %v why %q", ch.Method, ch.Why)
	}
}
