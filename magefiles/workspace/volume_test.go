package workspace

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/client"

	"github.com/migdrp/runpod/magefiles/engine"
)

func randomSuffix() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// TestMain gives this run its own name for the sync image and removes it afterwards, so tests
// never delete an image the tool or a parallel run is using.
func TestMain(m *testing.M) {
	imageRepo = "runpod-mage-test/workspace-" + randomSuffix()
	code := m.Run()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if eng, err := engine.Connect(ctx); err == nil {
		res, err := eng.API.ImageList(ctx, client.ImageListOptions{
			Filters: client.Filters{}.Add("reference", imageRepo)})
		if err == nil {
			for _, img := range res.Items {
				_, _ = eng.API.ImageRemove(ctx, img.ID, client.ImageRemoveOptions{Force: true})
			}
		}
		_ = eng.Close()
	}
	os.Exit(code)
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// newVolumeName returns a unique volume name that is removed when the test ends.
func newVolumeName(t *testing.T, eng *engine.Engine) string {
	name := "runpod-ws-test-" + randomSuffix()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_, err := eng.API.VolumeRemove(ctx, name, client.VolumeRemoveOptions{Force: true})
		if err != nil && !engine.IsNotFound(err) {
			t.Errorf("removing volume %s: %v", name, err)
		}
	})
	return name
}

// volumeContainer creates (never starts) a container of the sync image with the volume at
// /workspace, for reading and writing the volume through the archive API.
func volumeContainer(t *testing.T, eng *engine.Engine, volume string) string {
	t.Helper()
	ctx := testContext(t)
	image, err := ensureImage(ctx, eng)
	if err != nil {
		t.Fatal(err)
	}
	res, err := eng.API.ContainerCreate(ctx, client.ContainerCreateOptions{
		Config: &container.Config{Image: image},
		HostConfig: &container.HostConfig{Mounts: []mount.Mount{{Type: mount.TypeVolume,
			Source: volume, Target: "/workspace", VolumeOptions: &mount.VolumeOptions{NoCopy: true}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = eng.API.ContainerRemove(context.Background(), res.ID,
			client.ContainerRemoveOptions{Force: true})
	})
	return res.ID
}

// readVolume returns every regular file of the volume with its content and mode.
func readVolume(t *testing.T, eng *engine.Engine, volume string) map[string]file {
	t.Helper()
	id := volumeContainer(t, eng, volume)
	res, err := eng.API.CopyFromContainer(testContext(t), id,
		client.CopyFromContainerOptions{SourcePath: "/workspace"})
	if err != nil {
		t.Fatal(err)
	}
	defer res.Content.Close()
	files := map[string]file{}
	tr := tar.NewReader(res.Content)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		files[strings.TrimPrefix(h.Name, "workspace/")] = file{string(body),
			os.FileMode(h.Mode).Perm()}
	}
	return files
}

// writeVolume puts files into the volume as a user would (through Jupyter, say).
func writeVolume(t *testing.T, eng *engine.Engine, volume string, files map[string]file) {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for p, f := range files {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: p, Mode: int64(f.mode),
			Size: int64(len(f.content))}); err != nil {
			t.Fatal(err)
		}
		_, _ = tw.Write([]byte(f.content))
	}
	_ = tw.Close()
	id := volumeContainer(t, eng, volume)
	_, err := eng.API.CopyToContainer(testContext(t), id, client.CopyToContainerOptions{
		DestinationPath: "/workspace", Content: &buf})
	if err != nil {
		t.Fatal(err)
	}
}

// assertNoSyncContainer checks that SyncVolume removed its container.
func assertNoSyncContainer(t *testing.T, eng *engine.Engine, volume string) {
	t.Helper()
	res, err := eng.API.ContainerList(testContext(t), client.ContainerListOptions{All: true,
		Filters: client.Filters{}.Add("label", "runpod-mage.volume="+volume)})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Items) != 0 {
		t.Errorf("%d sync containers left behind for volume %s", len(res.Items), volume)
	}
}

func assertVolumeFile(t *testing.T, files map[string]file, p string, want file) {
	t.Helper()
	got, ok := files[p]
	if !ok {
		t.Errorf("volume has no %s", p)
		return
	}
	if got != want {
		t.Errorf("volume %s = %q mode %04o, want %q mode %04o", p, got.content, got.mode,
			want.content, want.mode)
	}
}

func templateV1(t *testing.T) string {
	dir := t.TempDir()
	writeTree(t, dir, map[string]file{
		"start.sh":       {"#!/bin/sh\necho v1\n", 0o755},
		"scripts/get.sh": {"#!/bin/sh\necho get\n", 0o755},
		"README.md":      {"read me\n", 0o644},
	})
	return dir
}

func TestSyncVolumeSeedsNewVolume(t *testing.T) {
	eng := engine.ConnectForTest(t)
	ctx := testContext(t)
	volume := newVolumeName(t, eng)
	tmpl := templateV1(t)

	start := time.Now()
	sum, err := Seed(ctx, eng, volume, tmpl)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("seeding took %s", time.Since(start))

	assertSummary(t, sum, Summary{Added: []string{"README.md", "scripts/get.sh", "start.sh"}})
	files := readVolume(t, eng, volume)
	assertVolumeFile(t, files, "start.sh", file{"#!/bin/sh\necho v1\n", 0o755})
	assertVolumeFile(t, files, "scripts/get.sh", file{"#!/bin/sh\necho get\n", 0o755})
	assertVolumeFile(t, files, "README.md", file{"read me\n", 0o644})
	if !strings.Contains(files[ManifestName].content, `"start.sh"`) {
		t.Errorf("manifest in the volume does not list start.sh: %q", files[ManifestName].content)
	}
	assertNoSyncContainer(t, eng, volume)
}

func TestSyncVolumeKeepsUserFileAndUpdatesChangedScript(t *testing.T) {
	eng := engine.ConnectForTest(t)
	ctx := testContext(t)
	volume := newVolumeName(t, eng)
	tmpl := templateV1(t)
	if _, err := Seed(ctx, eng, volume, tmpl); err != nil {
		t.Fatal(err)
	}
	writeVolume(t, eng, volume, map[string]file{
		"models/user.safetensors": {"weights", 0o600},
		"README.md":               {"my own notes\n", 0o644},
	})
	writeTree(t, tmpl, map[string]file{"start.sh": {"#!/bin/sh\necho v2\n", 0o755}})

	sum, err := SyncVolume(ctx, eng, volume, tmpl)
	if err != nil {
		t.Fatal(err)
	}

	assertSummary(t, sum, Summary{Updated: []string{"start.sh"}, Kept: []string{"README.md"}})
	files := readVolume(t, eng, volume)
	assertVolumeFile(t, files, "start.sh", file{"#!/bin/sh\necho v2\n", 0o755})
	assertVolumeFile(t, files, "models/user.safetensors", file{"weights", 0o600})
	assertVolumeFile(t, files, "README.md", file{"my own notes\n", 0o644})
	assertNoSyncContainer(t, eng, volume)
}

func TestSyncVolumeReportsConflict(t *testing.T) {
	eng := engine.ConnectForTest(t)
	ctx := testContext(t)
	volume := newVolumeName(t, eng)
	tmpl := templateV1(t)
	if _, err := Seed(ctx, eng, volume, tmpl); err != nil {
		t.Fatal(err)
	}
	writeVolume(t, eng, volume, map[string]file{"start.sh": {"#!/bin/sh\necho mine\n", 0o755}})
	writeTree(t, tmpl, map[string]file{"start.sh": {"#!/bin/sh\necho v2\n", 0o755}})

	sum, err := SyncVolume(ctx, eng, volume, tmpl)
	if err != nil {
		t.Fatal(err)
	}

	assertSummary(t, sum, Summary{Conflicts: []string{"start.sh"}})
	files := readVolume(t, eng, volume)
	assertVolumeFile(t, files, "start.sh", file{"#!/bin/sh\necho mine\n", 0o755})
	assertVolumeFile(t, files, "start.sh"+ConflictSuffix, file{"#!/bin/sh\necho v2\n", 0o755})
}

func TestSyncVolumeFailsWithoutTemplateBeforeCreatingAnything(t *testing.T) {
	eng := engine.ConnectForTest(t)
	ctx := testContext(t)
	volume := newVolumeName(t, eng)
	missing := filepath.Join(t.TempDir(), "no-template")

	_, err := SyncVolume(ctx, eng, volume, missing)

	if err == nil || !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), missing) {
		t.Fatalf("err = %v, want a not-exist error naming %s", err, missing)
	}
	assertNoSyncContainer(t, eng, volume)
}

func TestSyncVolumeReportsFailureInsideContainer(t *testing.T) {
	eng := engine.ConnectForTest(t)
	ctx := testContext(t)
	volume := newVolumeName(t, eng)
	tmpl := templateV1(t)
	if _, err := Seed(ctx, eng, volume, tmpl); err != nil {
		t.Fatal(err)
	}
	// The user has a file where the new template needs a directory.
	writeVolume(t, eng, volume, map[string]file{"setup": {"mine", 0o644}})
	writeTree(t, tmpl, map[string]file{"setup/get.sh": {"get", 0o755}})

	_, err := SyncVolume(ctx, eng, volume, tmpl)

	if err == nil || !strings.Contains(err.Error(), "exited with code 1") ||
		!strings.Contains(err.Error(), "setup/get.sh") {
		t.Fatalf("err = %v, want the sync's own error naming setup/get.sh", err)
	}
	assertVolumeFile(t, readVolume(t, eng, volume), "setup", file{"mine", 0o644})
	assertNoSyncContainer(t, eng, volume)
}

func TestSyncVolumeRemovesItsContainerWhenCancelled(t *testing.T) {
	eng := engine.ConnectForTest(t)
	volume := newVolumeName(t, eng)
	tmpl := templateV1(t)
	if _, err := ensureImage(testContext(t), eng); err != nil {
		t.Fatal(err)
	}

	// Cancel while the sync is under way: after the container exists, before it is done.
	ctx, cancel := context.WithCancel(testContext(t))
	go func() {
		for ctx.Err() == nil {
			res, err := eng.API.ContainerList(ctx, client.ContainerListOptions{All: true,
				Filters: client.Filters{}.Add("label", "runpod-mage.volume="+volume)})
			if err == nil && len(res.Items) > 0 {
				cancel()
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	_, err := SyncVolume(ctx, eng, volume, tmpl)
	cancel()

	t.Logf("SyncVolume after cancel: %v", err)
	assertNoSyncContainer(t, eng, volume)
}

func TestEnsureImageReplacesOlderSyncImages(t *testing.T) {
	eng := engine.ConnectForTest(t)
	ctx := testContext(t)
	current, err := ensureImage(ctx, eng)
	if err != nil {
		t.Fatal(err)
	}
	// Start from an engine that has only an image of an earlier binary.
	if _, err := eng.API.ImageRemove(ctx, current, client.ImageRemoveOptions{}); err != nil {
		t.Fatal(err)
	}
	old := imageRepo + ":000000000000"
	res, err := eng.API.ImageImport(ctx, client.ImageImportSource{
		Source: bytes.NewReader(imageTar([]byte("older binary"))), SourceName: "-"}, old,
		client.ImageImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, res)
	_ = res.Close()

	again, err := ensureImage(ctx, eng)
	if err != nil {
		t.Fatal(err)
	}

	if again != current {
		t.Errorf("same binary gave image %s, then %s", current, again)
	}
	if _, err := eng.API.ImageInspect(ctx, old); !engine.IsNotFound(err) {
		t.Errorf("old sync image %s still there (err %v)", old, err)
	}
	if _, err := eng.API.ImageInspect(ctx, again); err != nil {
		t.Errorf("current sync image missing: %v", err)
	}
}
