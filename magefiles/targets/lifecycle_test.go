package targets

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestLifecycleKeepsUserDataThroughResetAndRestore walks the documented workflow: build, first
// run seeding the volume, a user's file surviving a second run, reset with a backup holding
// that file, restore, clean.
func TestLifecycleKeepsUserDataThroughResetAndRestore(t *testing.T) {
	f := newFixture(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	n := f.names()

	// Build.
	if err := f.session().build(ctx, f.tag); err != nil {
		t.Fatalf("build: %v", err)
	}
	img, err := f.eng.Image(ctx, n.Image)
	if err != nil || !img.Exists {
		t.Fatalf("image %s missing after build: %v", n.Image, err)
	}
	if img.Labels["org.opencontainers.image.source"] == "" {
		t.Errorf("image has no OCI source label: %v", img.Labels)
	}

	// First run: detached, seeded from the template, serving on its port.
	if err := f.session("DETACH=1").run(ctx, f.tag); err != nil {
		t.Fatalf("first run: %v", err)
	}
	if body, err := f.get("/hello.txt"); err != nil || !strings.Contains(body, "template") {
		t.Fatalf("app on port %d did not serve the seeded template: %q %v", f.port, body, err)
	}
	files := f.volumeFiles(ctx)
	if files["hello.txt"] != "template\n" || files[".runpod-manifest.json"] == "" {
		t.Fatalf("first run did not seed the volume with its manifest: %v", keys(files))
	}
	var status syncBuffer
	st := f.session()
	st.stdout = &status
	if err := st.status(ctx); err != nil {
		t.Fatalf("status: %v", err)
	}
	for _, want := range []string{f.tag.Name, "image: built", "container: running",
		"127.0.0.1:" + itoa(f.port), "volume: present"} {
		if !strings.Contains(status.String(), want) {
			t.Errorf("status lacks %q: %s", want, status.String())
		}
	}
	envPath := filepath.Join(f.root, "envs", "runpod-"+f.tag.Name+".env")
	if st, err := os.Stat(envPath); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("env file not created from the example with mode 0600: %v", err)
	}

	// A user's file survives a second run, which does not seed again.
	f.writeVolumeFile(ctx, "models/user.safetensors", "weights")
	f.writeVolumeFile(ctx, "hello.txt", "edited by the user\n")
	if err := f.session().stop(ctx, f.tag); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if err := f.session("DETACH=1").run(ctx, f.tag); err != nil {
		t.Fatalf("second run: %v", err)
	}
	files = f.volumeFiles(ctx)
	if files["models/user.safetensors"] != "weights" {
		t.Fatalf("user file lost on the second run: %v", keys(files))
	}
	if files["hello.txt"] != "edited by the user\n" {
		t.Fatalf("second run seeded again over the user's edit: %q", files["hello.txt"])
	}
	if err := f.session().stop(ctx, f.tag); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if st, _ := f.eng.Inspect(ctx, n.Container); st.Exists {
		t.Fatalf("container %s still exists after stop", n.Container)
	}

	// Reset: a readable backup with the user's file, then no volume.
	if err := f.session("YES=1").resetVolume(ctx, f.tag); err != nil {
		t.Fatalf("resetVolume: %v", err)
	}
	archives, _ := filepath.Glob(filepath.Join(f.env["BACKUP_DIR"], f.tag.Name, "*.tar.gz"))
	if len(archives) != 1 {
		t.Fatalf("want one backup archive, found %v", archives)
	}
	if got := archiveFile(t, archives[0], "models/user.safetensors"); got != "weights" {
		t.Fatalf("backup lacks the user's file (got %q)", got)
	}
	if ok, _ := f.eng.VolumeExists(ctx, n.Volume); ok {
		t.Fatalf("volume %s still exists after resetVolume", n.Volume)
	}

	// Restore brings the file back.
	if err := f.session().restoreVolume(ctx, f.tag, "latest"); err != nil {
		t.Fatalf("restoreVolume: %v", err)
	}
	if got := f.volumeFiles(ctx)["models/user.safetensors"]; got != "weights" {
		t.Fatalf("restore did not bring the user's file back: %q", got)
	}

	// Clean leaves nothing behind but a second backup.
	if err := f.session("YES=1").clean(ctx, f.tag); err != nil {
		t.Fatalf("clean: %v", err)
	}
	if st, _ := f.eng.Inspect(ctx, n.Container); st.Exists {
		t.Error("container left after clean")
	}
	if ok, _ := f.eng.VolumeExists(ctx, n.Volume); ok {
		t.Error("volume left after clean")
	}
	if img, _ := f.eng.Image(ctx, n.Image); img.Exists {
		t.Error("image left after clean")
	}
	archives, _ = filepath.Glob(filepath.Join(f.env["BACKUP_DIR"], f.tag.Name, "*.tar.gz"))
	if len(archives) != 2 {
		t.Errorf("clean should back the volume up first; archives: %v", archives)
	}
}

// archiveFile returns the content of name in a .tar.gz backup, "" when absent.
func archiveFile(t *testing.T, path, name string) string {
	t.Helper()
	fh, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	gz, err := gzip.NewReader(fh)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return ""
		}
		if err != nil {
			t.Fatal(err)
		}
		clean := strings.TrimPrefix(strings.TrimPrefix(h.Name, "./"), "workspace/")
		if clean == name {
			b, _ := io.ReadAll(tr)
			return string(b)
		}
	}
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
