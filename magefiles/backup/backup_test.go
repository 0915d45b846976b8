package backup

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/migdrp/runpod/magefiles/engine"
	"github.com/moby/moby/client"
	logtest "github.com/sirupsen/logrus/hooks/test"
)

// file is one entry of a volume as the tests see it.
type file struct {
	Type     byte
	Mode     int64
	UID, GID int
	Body     string
}

func uniqueName(kind string) string {
	b := make([]byte, 5)
	_, _ = rand.Read(b)
	return "runpod-test-" + kind + "-" + hex.EncodeToString(b)
}

// newVolume returns a unique volume name removed when the test ends; the volume itself is
// created by the first write.
func newVolume(t *testing.T, eng *engine.Engine) string {
	t.Helper()
	name := uniqueName("vol")
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := eng.RemoveVolume(ctx, name); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return name
}

// fill writes the files into the volume through the engine, as a user's container would
// have left them.
func fill(t *testing.T, eng *engine.Engine, volume string, files map[string]file) {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, name := range sortedNames(files) {
		f := files[name]
		hdr := &tar.Header{Name: name, Typeflag: f.Type, Mode: f.Mode, Uid: f.UID, Gid: f.GID,
			ModTime: time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)}
		if f.Type == tar.TypeReg {
			hdr.Size = int64(len(f.Body))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(tw, f.Body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := eng.ImportVolume(t.Context(), volume, &buf); err != nil {
		t.Fatalf("writing into volume %s: %v", volume, err)
	}
}

func sortedNames(files map[string]file) []string {
	var names []string
	for n := range files {
		names = append(names, n)
	}
	// Parents sort before their children.
	slices.Sort(names)
	return names
}

// contents reads a tar stream (gzip-compressed when gz) into a map, the root left out.
func contents(t *testing.T, r io.Reader, gz bool) map[string]file {
	t.Helper()
	if gz {
		zr, err := gzip.NewReader(r)
		if err != nil {
			t.Fatal(err)
		}
		r = zr
	}
	got := map[string]file{}
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return got
		}
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimSuffix(hdr.Name, "/")
		if name == "." {
			continue
		}
		got[name] = file{Type: hdr.Typeflag, Mode: hdr.Mode & 0o7777, UID: hdr.Uid,
			GID: hdr.Gid, Body: string(body)}
	}
}

// volumeContents exports the volume and returns its files.
func volumeContents(t *testing.T, eng *engine.Engine, volume string) map[string]file {
	t.Helper()
	var buf bytes.Buffer
	if err := eng.ExportVolume(t.Context(), volume, &buf); err != nil {
		t.Fatal(err)
	}
	return contents(t, &buf, false)
}

func same(t *testing.T, what string, got, want map[string]file) {
	t.Helper()
	for name, w := range want {
		if g, ok := got[name]; !ok {
			t.Errorf("%s: %s is missing", what, name)
		} else if g != w {
			t.Errorf("%s: %s differs: got %s %o %d:%d (%d bytes), want %s %o %d:%d "+
				"(%d bytes)", what, name, string(g.Type), g.Mode, g.UID, g.GID, len(g.Body),
				string(w.Type), w.Mode, w.UID, w.GID, len(w.Body))
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("%s: unexpected %s", what, name)
		}
	}
}

var userFiles = map[string]file{
	"start.sh": {Type: tar.TypeReg, Mode: 0o755, Body: "#!/bin/sh\nexec app\n"},
	"outputs":  {Type: tar.TypeDir, Mode: 0o775, UID: 1000, GID: 1000},
	"outputs/cat.png": {Type: tar.TypeReg, Mode: 0o640, UID: 1000, GID: 1000,
		Body: "\x89PNG\x00\xff"},
	"models":            {Type: tar.TypeDir, Mode: 0o755},
	"models/secret.env": {Type: tar.TypeReg, Mode: 0o600, Body: strings.Repeat("k", 70000)},
}

func TestCreateWritesAVerifiedArchiveWithTheUserFiles(t *testing.T) {
	eng := engine.ConnectForTest(t)
	volume := newVolume(t, eng)
	fill(t, eng, volume, userFiles)
	dir := filepath.Join(t.TempDir(), "backups")

	res, err := Create(t.Context(), eng, volume, dir, "comfyui")
	if err != nil {
		t.Fatalf("Create: %v", err)
	}

	// Named after the UTC time, private, and nothing half-written beside it.
	if filepath.Dir(res.Path) != filepath.Join(dir, "comfyui") ||
		!regexp.MustCompile(`^\d{8}T\d{6}Z\.tar\.gz$`).MatchString(filepath.Base(res.Path)) {
		t.Errorf("archive path %s, want %s/comfyui/<UTC time>.tar.gz", res.Path, dir)
	}
	for p, want := range map[string]fs.FileMode{dir: 0o700, filepath.Dir(res.Path): 0o700,
		res.Path: 0o600} {
		if info, err := os.Stat(p); err != nil || info.Mode().Perm() != want {
			t.Errorf("%s: mode %v (%v), want %v", p, info.Mode().Perm(), err, want)
		}
	}
	if entries, _ := os.ReadDir(filepath.Dir(res.Path)); len(entries) != 1 {
		t.Errorf("backup folder holds %d entries, want only the archive", len(entries))
	}

	// The result counts what the archive holds, and it holds the user's files.
	var bytesWant int64
	for _, f := range userFiles {
		bytesWant += int64(len(f.Body))
	}
	if res.Files != 3 || res.Bytes != bytesWant || res.Entries != 6 {
		t.Errorf("result %d files, %d bytes, %d entries; want 3, %d, 6 (with the root)",
			res.Files, res.Bytes, res.Entries, bytesWant)
	}
	f, err := os.Open(res.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	same(t, "archive", contents(t, f, true), userFiles)

	if latest, err := Latest(dir, "comfyui"); err != nil || latest != res.Path {
		t.Errorf("Latest = %q, %v; want %s", latest, err, res.Path)
	}
}

func TestRestoreBringsTheFilesBackIdentical(t *testing.T) {
	eng := engine.ConnectForTest(t)
	src, dst := newVolume(t, eng), newVolume(t, eng)
	fill(t, eng, src, userFiles)
	res, err := Create(t.Context(), eng, src, t.TempDir(), "fluxgym")
	if err != nil {
		t.Fatalf("Create: %v", err)
	}

	// Into a volume that does not exist yet, as after resetVolume.
	if err := Restore(t.Context(), eng, dst, res.Path, false); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	same(t, "restored volume", volumeContents(t, eng, dst), userFiles)
}

func TestRestoreRefusesANonEmptyVolumeUnlessForced(t *testing.T) {
	eng := engine.ConnectForTest(t)
	src, dst := newVolume(t, eng), newVolume(t, eng)
	fill(t, eng, src, userFiles)
	res, err := Create(t.Context(), eng, src, t.TempDir(), "comfyui")
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	mine := map[string]file{"mine.txt": {Type: tar.TypeReg, Mode: 0o644, Body: "keep me"}}
	fill(t, eng, dst, mine)

	err = Restore(t.Context(), eng, dst, res.Path, false)
	if err == nil || !strings.Contains(err.Error(), "YES=1") ||
		strings.Contains(err.Error(), "\n") {
		t.Fatalf("Restore into a non-empty volume: %v; want one line suggesting YES=1", err)
	}
	same(t, "refused volume", volumeContents(t, eng, dst), mine)

	if err := Restore(t.Context(), eng, dst, res.Path, true); err != nil {
		t.Fatalf("forced Restore: %v", err)
	}
	want := map[string]file{"mine.txt": mine["mine.txt"]}
	for n, f := range userFiles {
		want[n] = f
	}
	same(t, "forced restore", volumeContents(t, eng, dst), want)
}

func TestRestoreRefusesADamagedArchiveBeforeTouchingTheVolume(t *testing.T) {
	eng := engine.ConnectForTest(t)
	src := newVolume(t, eng)
	big := map[string]file{}
	for n, f := range userFiles {
		big[n] = f
	}
	// Incompressible content, so the damage lands inside file data.
	noise := make([]byte, 1<<20)
	mrand.NewChaCha8([32]byte{1}).Read(noise)
	big["models/weights.bin"] = file{Type: tar.TypeReg, Mode: 0o644, Body: string(noise)}
	fill(t, eng, src, big)
	res, err := Create(t.Context(), eng, src, t.TempDir(), "comfyui")
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	good, err := os.ReadFile(res.Path)
	if err != nil {
		t.Fatal(err)
	}

	flipped := bytes.Clone(good)
	for i := len(flipped) / 2; i < len(flipped)/2+64; i++ {
		flipped[i] ^= 0x5a
	}
	damaged := map[string][]byte{
		"flipped bytes": flipped,
		"truncated":     good[:len(good)*3/4],
		"not gzip":      []byte("hello"),
	}
	for what, content := range damaged {
		t.Run(what, func(t *testing.T) {
			archive := filepath.Join(t.TempDir(), "damaged.tar.gz")
			if err := os.WriteFile(archive, content, 0o600); err != nil {
				t.Fatal(err)
			}

			// A missing volume stays missing.
			missing := newVolume(t, eng)
			if err := Restore(t.Context(), eng, missing, archive, false); err == nil {
				t.Fatal("Restore of a damaged archive succeeded")
			} else {
				t.Logf("refused: %v", err)
			}
			if ok, _ := eng.VolumeExists(t.Context(), missing); ok {
				t.Error("the damaged archive created the volume")
			}

			// A user's volume, even with force, keeps exactly its files.
			mine := newVolume(t, eng)
			kept := map[string]file{"mine.txt": {Type: tar.TypeReg, Mode: 0o644, Body: "x"}}
			fill(t, eng, mine, kept)
			if err := Restore(t.Context(), eng, mine, archive, true); err == nil {
				t.Fatal("forced Restore of a damaged archive succeeded")
			}
			same(t, "volume after refused restore", volumeContents(t, eng, mine), kept)
		})
	}
}

func TestCancelledBackupLeavesNoArchive(t *testing.T) {
	eng := engine.ConnectForTest(t)
	volume := newVolume(t, eng)
	fillRandom(t, eng, volume, 8, 8<<20)
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()

	// Cancel as soon as the archive is being written, as Ctrl-C would.
	go func() {
		for ctx.Err() == nil {
			parts, _ := filepath.Glob(filepath.Join(dir, "comfyui", "*.part"))
			if len(parts) == 1 {
				if info, err := os.Stat(parts[0]); err == nil && info.Size() > 1<<20 {
					cancel()
					return
				}
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	_, err := Create(ctx, eng, volume, dir, "comfyui")
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Create: %v; want context.Canceled", err)
	}
	t.Logf("cancelled: %v", err)

	// The access container went away with the cancel too.
	users, err := eng.API.ContainerList(context.Background(), client.ContainerListOptions{
		All: true, Filters: make(client.Filters).Add("volume", volume)})
	if err != nil {
		t.Fatal(err)
	}
	if len(users.Items) != 0 {
		t.Errorf("%d containers still use the volume after the cancel", len(users.Items))
	}
	left, _ := filepath.Glob(filepath.Join(dir, "comfyui", "*"))
	if len(left) != 0 {
		t.Fatalf("a cancelled backup left %v", left)
	}
	if _, err := Latest(dir, "comfyui"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Latest after a cancelled backup: %v; want none", err)
	}
}

// fillRandom writes n files of size incompressible bytes each into the volume.
func fillRandom(t *testing.T, eng *engine.Engine, volume string, n int, size int64) {
	t.Helper()
	pr, pw := io.Pipe()
	go func() {
		tw := tar.NewWriter(pw)
		src := mrand.NewChaCha8([32]byte{7})
		var err error
		for i := 0; i < n && err == nil; i++ {
			err = tw.WriteHeader(&tar.Header{Name: "models/part-" + string(rune('a'+i)) +
				".safetensors", Typeflag: tar.TypeReg, Mode: 0o644, Size: size,
				ModTime: time.Now()})
			if err == nil {
				_, err = io.CopyN(tw, src, size)
			}
		}
		if err == nil {
			err = tw.Close()
		}
		pw.CloseWithError(err)
	}()
	if err := eng.ImportVolume(t.Context(), volume, pr); err != nil {
		t.Fatalf("filling volume %s: %v", volume, err)
	}
}

func TestBackupThroughput(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 200 MB")
	}
	eng := engine.ConnectForTest(t)
	volume := newVolume(t, eng)
	const files, size = 8, 25 << 20
	start := time.Now()
	fillRandom(t, eng, volume, files, size)
	t.Logf("filled %.0f MB in %v", float64(files*size)/1e6,
		time.Since(start).Round(time.Millisecond))

	// Emptiness is answered from the first entries, not by reading the volume.
	start = time.Now()
	if empty, err := eng.VolumeIsEmpty(t.Context(), volume); err != nil || empty {
		t.Fatalf("VolumeIsEmpty = %v, %v; want false", empty, err)
	}
	t.Logf("VolumeIsEmpty of a %.0f MB volume: %v", float64(files*size)/1e6,
		time.Since(start).Round(time.Millisecond))

	// Report progress often enough to see it on a backup this small.
	logs := logtest.NewGlobal()
	defer logs.Reset()
	defer func(d time.Duration) { progressEvery = d }(progressEvery)
	progressEvery = 100 * time.Millisecond

	res, err := Create(t.Context(), eng, volume, t.TempDir(), "comfyui")
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if res.Bytes != files*size {
		t.Fatalf("backup holds %d bytes, want %d", res.Bytes, files*size)
	}
	mbps := float64(res.Bytes) / 1e6 / res.Duration.Seconds()
	t.Logf("backup of %.0f MB (export, gzip, verify): %v, %.0f MB/s, archive %.0f MB",
		float64(res.Bytes)/1e6, res.Duration.Round(time.Millisecond), mbps,
		float64(res.ArchiveBytes)/1e6)
	progressLines := 0
	for _, en := range logs.AllEntries() {
		if strings.Contains(en.Message, "so far") && strings.Contains(en.Message, "/s)") {
			progressLines++
		}
	}
	if res.Duration > 300*time.Millisecond && progressLines == 0 {
		t.Errorf("a backup of %v logged no progress", res.Duration)
	}

	dst := newVolume(t, eng)
	start = time.Now()
	if err := Restore(t.Context(), eng, dst, res.Path, false); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	d := time.Since(start)
	t.Logf("restore (verify, import): %v, %.0f MB/s", d.Round(time.Millisecond),
		float64(res.Bytes)/1e6/d.Seconds())
}

func TestLatestPicksTheNewestArchive(t *testing.T) {
	dir := t.TempDir()
	if _, err := Latest(dir, "comfyui"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Latest without backups: %v; want fs.ErrNotExist", err)
	}
	folder := filepath.Join(dir, "comfyui")
	for _, name := range []string{"20261203T130405Z.tar.gz", "20270101T000000Z.tar.gz",
		"20251231T235959Z.tar.gz", "20991231T000000Z.tar.gz.part", "notes.txt"} {
		if err := os.MkdirAll(folder, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(folder, name), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	got, err := Latest(dir, "comfyui")
	if want := filepath.Join(folder, "20270101T000000Z.tar.gz"); err != nil || got != want {
		t.Fatalf("Latest = %q, %v; want %s", got, err, want)
	}
	if _, err := Latest(dir, "../etc"); err == nil {
		t.Fatal("Latest accepted a tag that leaves the backup folder")
	}
}
