package targets

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/migdrp/runpod/magefiles/engine"
	"github.com/migdrp/runpod/magefiles/envfile"
	"github.com/migdrp/runpod/magefiles/tags"
	"github.com/migdrp/runpod/magefiles/testbase"
)

// fixture is a copy of testdata/tags/runpod-fixture under a temporary repository root, with a
// tag name, image repository and port of its own so that tests never meet each other's
// containers, volumes or images.
type fixture struct {
	t    *testing.T
	root string
	tag  tags.Tag
	port int
	env  map[string]string
	out  *syncBuffer
	eng  *engine.Engine
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	eng := engine.ConnectForTest(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := testbase.Ensure(ctx, eng.API, testbase.Busybox); err != nil {
		t.Fatal(err)
	}

	suffix := randomSuffix()
	root := t.TempDir()
	name := "fx" + suffix
	dir := filepath.Join(root, tags.DirPrefix+name)
	copyTree(t, filepath.Join(repoRoot(t), "testdata", "tags", "runpod-fixture"), dir)
	port := freePort(t)
	replaceInFiles(t, dir, "18080", strconv.Itoa(port))
	mustMkdir(t, filepath.Join(root, "envs"))
	example, err := os.ReadFile(filepath.Join(repoRoot(t), "testdata", "tags",
		"fixture.env.example"))
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, filepath.Join(root, "envs", "runpod-"+name+".env.example"), string(example))
	t.Setenv(envfile.ConfigDirEnv, t.TempDir())

	f := &fixture{t: t, root: root, tag: tags.Tag{Name: name, Dir: dir}, port: port,
		env: map[string]string{"IMAGE_REPO": "runpod-test-" + suffix + "/runpod",
			"BACKUP_DIR": filepath.Join(root, "backups"), "GPUS": "none"},
		out: &syncBuffer{}, eng: eng}
	t.Cleanup(f.removeAll)
	return f
}

// session returns a session on the fixture's root with the given extra settings.
func (f *fixture) session(settings ...string) *session {
	env := map[string]string{}
	for k, v := range f.env {
		env[k] = v
	}
	for _, kv := range settings {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	return &session{root: f.root, getenv: func(k string) string { return env[k] },
		stdout: f.out, stderr: f.out, log: newLogger(f.out, true), eng: f.eng}
}

func (f *fixture) names() tags.Names { return tags.NamesFor(f.env["IMAGE_REPO"], f.tag.Name) }

// removeAll removes the container, volume and image of the fixture, whatever state a failed
// test left them in.
func (f *fixture) removeAll() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n := f.names()
	_ = f.eng.Remove(ctx, n.Container)
	_, _ = f.eng.API.VolumeRemove(ctx, n.Volume, client.VolumeRemoveOptions{Force: true})
	_, _ = f.eng.API.ImageRemove(ctx, n.Image, client.ImageRemoveOptions{Force: true,
		PruneChildren: true})
	if f.t.Failed() {
		f.t.Logf("output of the failed test:\n%s", f.out.String())
	}
}

// volumeFiles reads the fixture's volume through the engine and returns path -> content.
func (f *fixture) volumeFiles(ctx context.Context) map[string]string {
	f.t.Helper()
	var buf bytes.Buffer
	if err := f.eng.ExportVolume(ctx, f.names().Volume, &buf); err != nil {
		f.t.Fatalf("reading volume: %v", err)
	}
	files := map[string]string{}
	tr := tar.NewReader(&buf)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			f.t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			b, _ := io.ReadAll(tr)
			files[strings.TrimPrefix(strings.TrimPrefix(h.Name, "./"), "workspace/")] =
				string(b)
		}
	}
	return files
}

// writeVolumeFile writes a file into the volume as a user would, through the engine.
func (f *fixture) writeVolumeFile(ctx context.Context, name, content string) {
	f.t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	_ = tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(content)),
		ModTime: time.Now()})
	_, _ = tw.Write([]byte(content))
	_ = tw.Close()
	if err := f.eng.ImportVolume(ctx, f.names().Volume, &buf); err != nil {
		f.t.Fatalf("writing %s into the volume: %v", name, err)
	}
}

// get fetches a path from the fixture's app on its published port.
func (f *fixture) get(path string) (string, error) {
	var last error
	for i := 0; i < 50; i++ {
		conn, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1",
			strconv.Itoa(f.port)), time.Second)
		if err == nil {
			_ = conn.SetDeadline(time.Now().Add(3 * time.Second))
			_, _ = io.WriteString(conn, "GET "+path+" HTTP/1.0\r\n\r\n")
			b, err := io.ReadAll(conn)
			_ = conn.Close()
			if err == nil && len(b) > 0 {
				return string(b), nil
			}
			last = err
		} else {
			last = err
		}
		time.Sleep(100 * time.Millisecond)
	}
	return "", last
}

func repoRoot(t *testing.T) string {
	t.Helper()
	wd, _ := os.Getwd()
	root, err := tags.Root(wd)
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func randomSuffix() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		r, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, r)
		if fi.IsDir() {
			return os.MkdirAll(target, fi.Mode().Perm())
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, fi.Mode().Perm())
	})
	if err != nil {
		t.Fatal(err)
	}
}

func replaceInFiles(t *testing.T, dir, old, new string) {
	t.Helper()
	_ = filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		b, _ := os.ReadFile(p)
		if bytes.Contains(b, []byte(old)) {
			return os.WriteFile(p, bytes.ReplaceAll(b, []byte(old), []byte(new)), fi.Mode())
		}
		return nil
	})
}

func mustMkdir(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
}

func mustWrite(t *testing.T, path, content string) {
	t.Helper()
	mustMkdir(t, filepath.Dir(path))
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// syncBuffer collects output written from several goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func readAll(path string) (string, error) {
	b, err := os.ReadFile(path)
	return string(b), err
}

func itoa(n int) string { return strconv.Itoa(n) }
