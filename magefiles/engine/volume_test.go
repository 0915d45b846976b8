package engine

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/client"
)

// volTestEntry is one file of a volume as a test sees it.
type volTestEntry struct {
	Type     byte
	Mode     int64
	UID, GID int
	Link     string
	Body     string
}

func volTestName(t *testing.T, kind string) string {
	t.Helper()
	b := make([]byte, 5)
	_, _ = rand.Read(b)
	return "runpod-test-" + kind + "-" + hex.EncodeToString(b)
}

// volTestVolume returns a unique volume name that is removed when the test ends.
func volTestVolume(t *testing.T, e *Engine) string {
	t.Helper()
	name := volTestName(t, "vol")
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := e.RemoveVolume(ctx, name); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return name
}

// volTestTar makes a tar of the entries, named relative to the volume's root.
func volTestTar(t *testing.T, entries map[string]volTestEntry) *bytes.Buffer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mtime := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, name := range volTestSorted(entries) {
		en := entries[name]
		hdr := &tar.Header{Name: name, Typeflag: en.Type, Mode: en.Mode, Uid: en.UID,
			Gid: en.GID, Linkname: en.Link, ModTime: mtime, Size: int64(len(en.Body))}
		if en.Type != tar.TypeReg {
			hdr.Size = 0
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(tw, en.Body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return &buf
}

func volTestSorted(entries map[string]volTestEntry) []string {
	names := make([]string, 0, len(entries))
	for n := range entries {
		names = append(names, n)
	}
	// Parents sort before their children.
	slices.Sort(names)
	return names
}

// volTestRead exports the volume and returns its entries, root excluded.
func volTestRead(t *testing.T, e *Engine, volume string) map[string]volTestEntry {
	t.Helper()
	var buf bytes.Buffer
	if err := e.ExportVolume(t.Context(), volume, &buf); err != nil {
		t.Fatalf("ExportVolume: %v", err)
	}
	got := map[string]volTestEntry{}
	tr := tar.NewReader(&buf)
	first := true
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("reading export: %v", err)
		}
		if first {
			if hdr.Name != "./" || hdr.Typeflag != tar.TypeDir {
				t.Errorf("first entry = %q (type %c), want the root \"./\"", hdr.Name,
					hdr.Typeflag)
			}
			first = false
			continue
		}
		if strings.HasPrefix(hdr.Name, "/") || strings.HasPrefix(hdr.Name, "workspace/") {
			t.Errorf("entry %q is not relative to the volume's root", hdr.Name)
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		got[strings.TrimSuffix(hdr.Name, "/")] = volTestEntry{Type: hdr.Typeflag,
			Mode: hdr.Mode & 0o7777, UID: hdr.Uid, GID: hdr.Gid, Link: hdr.Linkname,
			Body: string(body)}
	}
	return got
}

var volTestFiles = map[string]volTestEntry{
	"models": {Type: tar.TypeDir, Mode: 0o750, UID: 1000, GID: 1000},
	"models/a.bin": {Type: tar.TypeReg, Mode: 0o640, UID: 1000, GID: 1000,
		Body: "weights\x00\xff"},
	"models/latest": {Type: tar.TypeSymlink, Mode: 0o777, Link: "a.bin"},
	"models/same.bin": {Type: tar.TypeLink, Mode: 0o640, UID: 1000, GID: 1000,
		Link: "models/a.bin"},
	"start.sh":           {Type: tar.TypeReg, Mode: 0o755, Body: "#!/bin/sh\necho hi\n"},
	"outputs":            {Type: tar.TypeDir, Mode: 0o755},
	"outputs/empty.txt":  {Type: tar.TypeReg, Mode: 0o600},
	"outputs/name é.png": {Type: tar.TypeReg, Mode: 0o644, Body: strings.Repeat("px", 5000)},
}

func TestVolumeExportImportRoundTripKeepsFilesAndModes(t *testing.T) {
	e := ConnectForTest(t)
	ctx := t.Context()
	src, dst := volTestVolume(t, e), volTestVolume(t, e)

	// Writing into a missing volume creates it.
	if err := e.ImportVolume(ctx, src, volTestTar(t, volTestFiles)); err != nil {
		t.Fatalf("ImportVolume: %v", err)
	}
	volTestCompare(t, volTestRead(t, e, src), volTestFiles)

	// An export imported elsewhere is the same volume again.
	var archive bytes.Buffer
	if err := e.ExportVolume(ctx, src, &archive); err != nil {
		t.Fatalf("ExportVolume: %v", err)
	}
	if err := e.ImportVolume(ctx, dst, &archive); err != nil {
		t.Fatalf("ImportVolume: %v", err)
	}
	volTestCompare(t, volTestRead(t, e, dst), volTestFiles)

	volTestNoAccessLeft(t, e, src)
	volTestNoAccessLeft(t, e, dst)
}

func volTestCompare(t *testing.T, got, want map[string]volTestEntry) {
	t.Helper()
	for name, w := range want {
		g, ok := got[name]
		if !ok {
			t.Errorf("%s: missing", name)
			continue
		}
		if w.Type == tar.TypeSymlink {
			// Symlink modes are not meaningful on Linux.
			g.Mode, w.Mode = 0, 0
		}
		if g != w {
			t.Errorf("%s: got %+v, want %+v", name, g, w)
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("%s: unexpected entry", name)
		}
	}
}

// volTestNoAccessLeft fails when an access container for the volume outlived its operation.
func volTestNoAccessLeft(t *testing.T, e *Engine, volume string) {
	t.Helper()
	users, err := e.volUsers(context.Background(), volume)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range users {
		t.Errorf("container %s still uses volume %s", volContainerName(c), volume)
	}
}

func TestVolumeIsEmptyAndExists(t *testing.T) {
	e := ConnectForTest(t)
	ctx := t.Context()
	name := volTestVolume(t, e)

	if ok, err := e.VolumeExists(ctx, name); err != nil || ok {
		t.Fatalf("VolumeExists of a missing volume = %v, %v", ok, err)
	}
	if empty, err := e.VolumeIsEmpty(ctx, name); err != nil || !empty {
		t.Fatalf("VolumeIsEmpty of a missing volume = %v, %v; want true", empty, err)
	}
	if ok, _ := e.VolumeExists(ctx, name); ok {
		t.Fatal("VolumeIsEmpty created the volume")
	}

	if _, err := e.API.VolumeCreate(ctx, client.VolumeCreateOptions{Name: name}); err != nil {
		t.Fatal(err)
	}
	if ok, err := e.VolumeExists(ctx, name); err != nil || !ok {
		t.Fatalf("VolumeExists of a created volume = %v, %v", ok, err)
	}
	if empty, err := e.VolumeIsEmpty(ctx, name); err != nil || !empty {
		t.Fatalf("VolumeIsEmpty of a fresh volume = %v, %v; want true", empty, err)
	}

	// One hidden file is enough to make it non-empty.
	files := map[string]volTestEntry{".keep": {Type: tar.TypeReg, Mode: 0o644}}
	if err := e.ImportVolume(ctx, name, volTestTar(t, files)); err != nil {
		t.Fatal(err)
	}
	if empty, err := e.VolumeIsEmpty(ctx, name); err != nil || empty {
		t.Fatalf("VolumeIsEmpty with a file = %v, %v; want false", empty, err)
	}
	volTestNoAccessLeft(t, e, name)
}

func TestExportOfMissingVolumeFailsWithoutCreatingIt(t *testing.T) {
	e := ConnectForTest(t)
	name := volTestVolume(t, e)
	err := e.ExportVolume(t.Context(), name, io.Discard)
	if !IsNotFound(err) {
		t.Fatalf("ExportVolume of a missing volume: %v; want a not-found error", err)
	}
	if ok, _ := e.VolumeExists(t.Context(), name); ok {
		t.Fatal("ExportVolume created the volume")
	}
}

func TestRemoveVolumeInUseNamesTheContainer(t *testing.T) {
	e := ConnectForTest(t)
	ctx := t.Context()
	name := volTestVolume(t, e)
	files := map[string]volTestEntry{"model.bin": {Type: tar.TypeReg, Mode: 0o644, Body: "x"}}
	if err := e.ImportVolume(ctx, name, volTestTar(t, files)); err != nil {
		t.Fatal(err)
	}

	// A container that uses the volume, like the tag's stopped container would.
	user := volTestName(t, "user")
	res, err := e.API.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name:   user,
		Config: &container.Config{Image: VolumeAccessImage},
		HostConfig: &container.HostConfig{Mounts: []mount.Mount{{
			Type: mount.TypeVolume, Source: name, Target: "/workspace"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	removeUser := func() {
		_, _ = e.API.ContainerRemove(context.Background(), res.ID,
			client.ContainerRemoveOptions{Force: true})
	}
	t.Cleanup(removeUser)

	err = e.RemoveVolume(ctx, name)
	if err == nil || !strings.Contains(err.Error(), user) {
		t.Fatalf("RemoveVolume of a volume in use: %v; want an error naming %s", err, user)
	}
	t.Logf("volume in use: %v", err)
	if ok, _ := e.VolumeExists(ctx, name); !ok {
		t.Fatal("the volume in use is gone")
	}

	removeUser()
	if err := e.RemoveVolume(ctx, name); err != nil {
		t.Fatalf("RemoveVolume: %v", err)
	}
	if ok, _ := e.VolumeExists(ctx, name); ok {
		t.Fatal("the volume is still there")
	}
	// Removing again is already done.
	if err := e.RemoveVolume(ctx, name); err != nil {
		t.Fatalf("RemoveVolume of a missing volume: %v", err)
	}
}

func TestRemoveVolumeClearsLeftoverAccessContainers(t *testing.T) {
	e := ConnectForTest(t)
	ctx := t.Context()
	name := volTestVolume(t, e)

	// An access container left behind by a killed run must not block the removal.
	err := e.volAccessWith(ctx, name, func(ctx context.Context, id string) error {
		return e.RemoveVolume(ctx, name)
	})
	if err != nil {
		t.Fatalf("RemoveVolume with an access container attached: %v", err)
	}
	if ok, _ := e.VolumeExists(ctx, name); ok {
		t.Fatal("the volume is still there")
	}
}

func TestVolumeSizeCountsTheFiles(t *testing.T) {
	e := ConnectForTest(t)
	ctx := t.Context()
	name := volTestVolume(t, e)
	body := strings.Repeat("0123456789abcdef", 1<<16) // 1 MiB
	files := map[string]volTestEntry{"big.bin": {Type: tar.TypeReg, Mode: 0o644, Body: body}}
	if err := e.ImportVolume(ctx, name, volTestTar(t, files)); err != nil {
		t.Fatal(err)
	}
	size, err := e.VolumeSize(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if size < int64(len(body)) {
		t.Fatalf("VolumeSize = %d, want at least %d", size, len(body))
	}
	if _, err := e.VolumeSize(ctx, name+"-missing"); !IsNotFound(err) {
		t.Fatalf("VolumeSize of a missing volume: %v; want not found", err)
	}
}
