package targets

import (
	"github.com/moby/moby/client"

	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// gitInit makes the fixture's root a git repository with everything committed, as a user's
// clone is.
func (f *fixture) gitInit() {
	f.t.Helper()
	for _, args := range [][]string{
		{"init", "-q"}, {"config", "user.email", "test@example.com"},
		{"config", "user.name", "test"}, {"add", "-A"}, {"commit", "-qm", "fixture"},
	} {
		f.git(args...)
	}
}

func (f *fixture) git(args ...string) {
	f.t.Helper()
	out, err := exec.Command("git", append([]string{"-C", f.root}, args...)...).
		CombinedOutput()
	if err != nil {
		f.t.Fatalf("git %v: %v\n%s", args, err, out)
	}
}

// started builds and runs the fixture detached, with a user's file in the volume.
func (f *fixture) started(ctx context.Context) {
	f.t.Helper()
	if err := f.session("DETACH=1").run(ctx, f.tag); err != nil {
		f.t.Fatalf("run: %v", err)
	}
	f.writeVolumeFile(ctx, "outputs/user.png", "user data")
}

func TestBuildTwiceBuildsOnce(t *testing.T) {
	f := newFixture(t)
	f.gitInit()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := f.session().build(ctx, f.tag); err != nil {
		t.Fatal(err)
	}
	first, _ := f.eng.Image(ctx, f.names().Image)
	if err := f.session().build(ctx, f.tag); err != nil {
		t.Fatal(err)
	}
	second, _ := f.eng.Image(ctx, f.names().Image)
	if first.ID != second.ID || !strings.Contains(f.out.String(), "up to date") {
		t.Fatalf("second build was not skipped: %s -> %s", first.ID, second.ID)
	}
	if err := f.session("FORCE=1").build(ctx, f.tag); err != nil {
		t.Fatal(err)
	}
	forced, _ := f.eng.Image(ctx, f.names().Image)
	if forced.ID == second.ID {
		t.Fatal("FORCE=1 did not build")
	}
}

func TestUpdateAfterScriptChangeKeepsUserFiles(t *testing.T) {
	f := newFixture(t)
	f.gitInit()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	f.started(ctx)
	buildID := f.volumeFiles(ctx)[".build-id"]

	// A new script version, committed; and a file both sides changed.
	mustWrite(t, filepath.Join(f.tag.Dir, "workspace", "hello.txt"), "template v2\n")
	mustWrite(t, filepath.Join(f.tag.Dir, "workspace", "start.sh"),
		strings.Replace(readFile(t, filepath.Join(f.tag.Dir, "workspace", "start.sh")),
			"standing in", "standing in (v2)", 1))
	f.writeVolumeFile(ctx, "start.sh", "#!/bin/sh\necho user version\nexec httpd -f -p "+
		itoa(f.port)+" -h /workspace\n")
	f.git("commit", "-qam", "scripts v2")

	if err := f.session().update(ctx, f.tag); err != nil {
		t.Fatalf("update: %v", err)
	}
	files := f.volumeFiles(ctx)
	if files["outputs/user.png"] != "user data" {
		t.Fatal("update lost the user's file")
	}
	if files["hello.txt"] != "template v2\n" {
		t.Fatalf("changed script not updated: %q", files["hello.txt"])
	}
	if !strings.Contains(files["start.sh"], "user version") ||
		!strings.Contains(files["start.sh.template-new"], "(v2)") {
		t.Fatalf("conflict not kept beside the user's file: %v", keys(files))
	}
	if !strings.Contains(f.out.String(), "conflict") {
		t.Fatal("the conflict was not reported")
	}
	if files[".build-id"] != buildID {
		t.Fatal("a scripts-only change rebuilt without cache")
	}
	if st, _ := f.eng.Inspect(ctx, f.names().Container); !st.Running {
		t.Fatal("container not running after update")
	}
}

func TestUpdateAfterDockerfileChangeRebuildsAndResetsWithBackup(t *testing.T) {
	f := newFixture(t)
	f.gitInit()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	f.started(ctx)
	buildID := f.volumeFiles(ctx)[".build-id"]

	appendFile(t, filepath.Join(f.tag.Dir, "Dockerfile"), "ENV FIXTURE_VERSION=2\n")
	f.git("commit", "-qam", "Dockerfile v2")
	if err := f.session().update(ctx, f.tag); err == nil {
		t.Fatal("a volume reset without a terminal must need YES=1")
	}
	if f.volumeFiles(ctx)["outputs/user.png"] != "user data" {
		t.Fatal("the refused update touched the volume")
	}

	if err := f.session("YES=1").update(ctx, f.tag); err != nil {
		t.Fatalf("update: %v", err)
	}
	files := f.volumeFiles(ctx)
	if files[".build-id"] == "" || files[".build-id"] == buildID {
		t.Fatalf("Dockerfile change did not rebuild without cache (build id %q)",
			files[".build-id"])
	}
	if _, ok := files["outputs/user.png"]; ok {
		t.Fatal("volume was not reset")
	}
	archives, _ := filepath.Glob(filepath.Join(f.env["BACKUP_DIR"], f.tag.Name, "*.tar.gz"))
	if len(archives) != 1 || archiveFile(t, archives[0], "outputs/user.png") != "user data" {
		t.Fatalf("no backup with the user's file: %v", archives)
	}
}

func TestUpdateWithFailingBuildTouchesNothing(t *testing.T) {
	f := newFixture(t)
	f.gitInit()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	f.started(ctx)
	before, _ := f.eng.Inspect(ctx, f.names().Container)

	appendFile(t, filepath.Join(f.tag.Dir, "Dockerfile"), "RUN exit 7\n")
	err := f.session("YES=1").update(ctx, f.tag)
	if err == nil || !strings.Contains(err.Error(), "nothing else was changed") {
		t.Fatalf("want a failed build that changed nothing, got %v", err)
	}
	after, _ := f.eng.Inspect(ctx, f.names().Container)
	if !after.Running || after.ID != before.ID {
		t.Fatal("the failed update touched the running container")
	}
	if f.volumeFiles(ctx)["outputs/user.png"] != "user data" {
		t.Fatal("the failed update touched the volume")
	}
}

func TestUpdateScriptsSyncsWithoutRemovingTheVolume(t *testing.T) {
	f := newFixture(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	f.started(ctx)
	mustWrite(t, filepath.Join(f.tag.Dir, "workspace", "new-script.sh"), "echo new\n")

	if err := f.session().updateScripts(ctx, f.tag); err != nil {
		t.Fatalf("update:scripts: %v", err)
	}
	files := f.volumeFiles(ctx)
	if files["new-script.sh"] != "echo new\n" || files["outputs/user.png"] != "user data" {
		t.Fatalf("sync did not add the script and keep user data: %v", keys(files))
	}
	if st, _ := f.eng.Inspect(ctx, f.names().Container); !st.Running {
		t.Fatal("container not running after update:scripts")
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := readAll(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestBuildAddsCommonAndTheSyncProgram: a Dockerfile that copies from common/ gets the shared
// folder and the runpod-workspace program in its context, and nothing else from the root.
func TestBuildAddsCommonAndTheSyncProgram(t *testing.T) {
	f := newFixture(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	mustWrite(t, filepath.Join(f.root, "common", "lib", "log.sh"), "log() { echo \"$@\"; }\n")
	mustWrite(t, filepath.Join(f.root, "unrelated", "big.bin"), "not for the image\n")
	appendFile(t, filepath.Join(f.tag.Dir, "Dockerfile"), "COPY common/ /opt/runpod/\n")

	if err := f.session().build(ctx, f.tag); err != nil {
		t.Fatalf("build: %v", err)
	}
	created, err := f.eng.API.ContainerCreate(ctx, client.ContainerCreateOptions{
		Image: f.names().Image})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		_, _ = f.eng.API.ContainerRemove(context.Background(), created.ID,
			client.ContainerRemoveOptions{Force: true})
	}()
	for path, exec := range map[string]bool{"/opt/runpod/lib/log.sh": false,
		"/opt/runpod/bin/runpod-workspace": true} {
		st, err := f.eng.API.ContainerStatPath(ctx, created.ID,
			client.ContainerStatPathOptions{Path: path})
		if err != nil {
			t.Fatalf("%s missing from the image: %v", path, err)
		}
		if exec && st.Stat.Mode&0o111 == 0 {
			t.Errorf("%s is not executable: %v", path, st.Stat.Mode)
		}
	}
	for _, path := range []string{"/opt/runpod/unrelated", "/unrelated"} {
		if _, err := f.eng.API.ContainerStatPath(ctx, created.ID,
			client.ContainerStatPathOptions{Path: path}); err == nil {
			t.Errorf("%s reached the image", path)
		}
	}
}
