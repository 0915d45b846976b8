package images

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/migdrp/runpod/magefiles/engine"
	"github.com/migdrp/runpod/magefiles/testbase"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/build"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/client"
)

// suffix makes names unique per test run, so parallel runs and leftovers never collide.
func suffix(t testing.TB) string {
	t.Helper()
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

var (
	syncBinaryOnce sync.Once
	syncBinaryPath string
	syncBinaryErr  error
)

// syncBinary builds the static workspace sync tool the images run at start, once per test run.
func syncBinary(t testing.TB) string {
	t.Helper()
	syncBinaryOnce.Do(func() {
		dir, err := os.MkdirTemp("", "runpod-images-test-")
		if err != nil {
			syncBinaryErr = err
			return
		}
		syncBinaryPath = filepath.Join(dir, "runpod-workspace")
		cmd := exec.Command("go", "build", "-o", syncBinaryPath, "./magefiles/cmd/runpod-workspace")
		cmd.Dir = repoRoot(t)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			syncBinaryErr = fmt.Errorf("building runpod-workspace: %v\n%s", err, out)
		}
	})
	if syncBinaryErr != nil {
		t.Fatal(syncBinaryErr)
	}
	return syncBinaryPath
}

// contextTar writes a build context the way the tool lays it out: the tag directory at the
// root, common/ and the sync binary as overlays, plus the test's Dockerfile and stand-ins.
func contextTar(t testing.TB, tag string) io.Reader {
	t.Helper()
	root := repoRoot(t)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(src, name string) {
		err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, err := filepath.Rel(src, path)
			if err != nil {
				return err
			}
			if name == "." && rel == "Dockerfile" {
				return nil // the test image's own Dockerfile takes its place
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			hdr, err := tar.FileInfoHeader(info, "")
			if err != nil {
				return err
			}
			hdr.Name = filepath.ToSlash(filepath.Join(name, rel))
			if d.IsDir() {
				hdr.Name += "/"
			}
			// Fixed times and owners keep the engine's layer cache valid between runs.
			hdr.ModTime = time.Unix(0, 0)
			hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = 0, 0, "", ""
			if err := tw.WriteHeader(hdr); err != nil {
				return err
			}
			if d.Type().IsRegular() {
				f, err := os.Open(path)
				if err != nil {
					return err
				}
				defer f.Close()
				_, err = io.Copy(tw, f)
				return err
			}
			return nil
		})
		if err != nil {
			t.Fatalf("adding %s to the build context: %v", src, err)
		}
	}
	add(filepath.Join(root, "runpod-"+tag), ".")
	add(filepath.Join(root, "common"), "common")
	add(syncBinary(t), "common/bin/runpod-workspace")
	add(filepath.Join(root, "testdata", "images", "standins"), "standins")
	add(filepath.Join(root, "testdata", "images", tag, "Dockerfile"), "Dockerfile")
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return &buf
}

// buildTestImage builds the test image of tag and removes it when the test ends. Its parent
// layers stay as the engine's build cache, so the apt step runs once per machine.
func buildTestImage(t *testing.T, eng *engine.Engine, tag string) string {
	t.Helper()
	ctx := context.Background()
	if err := testbase.Ensure(ctx, eng.API, testbase.Debian); err != nil {
		t.Fatal(err)
	}
	image := "runpod-test/images-" + tag + ":" + suffix(t)
	t.Cleanup(func() {
		_, _ = eng.API.ImageRemove(context.Background(), image, client.ImageRemoveOptions{})
	})
	res, err := eng.API.ImageBuild(ctx, contextTar(t, tag), client.ImageBuildOptions{
		Tags: []string{image}, Dockerfile: "Dockerfile", Remove: true, ForceRemove: true,
		Version: build.BuilderV1,
	})
	if err != nil {
		t.Fatalf("building %s: %v", image, err)
	}
	defer res.Body.Close()
	var out strings.Builder
	dec := json.NewDecoder(res.Body)
	for {
		var msg struct {
			Stream string
			Error  string
		}
		if err := dec.Decode(&msg); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("reading the build output of %s: %v", image, err)
		}
		out.WriteString(msg.Stream)
		if msg.Error != "" {
			t.Fatalf("building %s: %s\n%s", image, msg.Error, tail(out.String(), 3000))
		}
	}
	return image
}

// box is one running test container and the volume it mounts at /workspace.
type box struct {
	t      *testing.T
	eng    *engine.Engine
	id     string
	volume string
}

// newVolume creates a volume removed when the test ends.
func newVolume(t *testing.T, eng *engine.Engine) string {
	t.Helper()
	name := "runpod-test-images-" + suffix(t)
	if _, err := eng.API.VolumeCreate(context.Background(),
		client.VolumeCreateOptions{Name: name}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = eng.API.VolumeRemove(context.Background(), name,
			client.VolumeRemoveOptions{Force: true})
	})
	return name
}

// startBox creates and starts a container of image with env and the volume, publishing no
// port; it is removed when the test ends.
func startBox(t *testing.T, eng *engine.Engine, image, volume string, env []string) *box {
	t.Helper()
	ctx := context.Background()
	res, err := eng.API.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name:   "runpod-test-images-" + suffix(t),
		Config: &container.Config{Image: image, Env: env},
		HostConfig: &container.HostConfig{Mounts: []mount.Mount{
			{Type: mount.TypeVolume, Source: volume, Target: "/workspace"},
		}},
	})
	if err != nil {
		t.Fatalf("creating a container of %s: %v", image, err)
	}
	b := &box{t: t, eng: eng, id: res.ID, volume: volume}
	t.Cleanup(b.remove)
	if _, err := eng.API.ContainerStart(ctx, res.ID, client.ContainerStartOptions{}); err != nil {
		t.Fatalf("starting a container of %s: %v", image, err)
	}
	return b
}

func (b *box) remove() {
	_, _ = b.eng.API.ContainerRemove(context.Background(), b.id,
		client.ContainerRemoveOptions{Force: true})
}

// exec runs cmd in the container and returns its combined output and exit code.
func (b *box) exec(cmd ...string) (string, int) {
	b.t.Helper()
	ctx := context.Background()
	created, err := b.eng.API.ExecCreate(ctx, b.id, client.ExecCreateOptions{
		Cmd: cmd, AttachStdout: true, AttachStderr: true,
	})
	if err != nil {
		b.t.Fatalf("exec %v: %v", cmd, err)
	}
	att, err := b.eng.API.ExecAttach(ctx, created.ID, client.ExecAttachOptions{})
	if err != nil {
		b.t.Fatalf("exec %v: %v", cmd, err)
	}
	var out bytes.Buffer
	_, err = stdcopy.StdCopy(&out, &out, att.Reader)
	att.Close()
	if err != nil {
		b.t.Fatalf("exec %v: reading output: %v", cmd, err)
	}
	res, err := b.eng.API.ExecInspect(ctx, created.ID, client.ExecInspectOptions{})
	if err != nil {
		b.t.Fatalf("exec %v: %v", cmd, err)
	}
	return out.String(), res.ExitCode
}

// sh runs a shell command that must succeed and returns its output.
func (b *box) sh(script string) string {
	b.t.Helper()
	out, code := b.exec("bash", "-c", script)
	if code != 0 {
		b.t.Fatalf("%s: exit %d\n%s\ncontainer log:\n%s", script, code, out, tail(b.logs(), 3000))
	}
	return out
}

// logs returns everything the container printed so far.
func (b *box) logs() string {
	b.t.Helper()
	rc, err := b.eng.API.ContainerLogs(context.Background(), b.id,
		client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		b.t.Fatalf("reading the container log: %v", err)
	}
	defer rc.Close()
	var out bytes.Buffer
	if _, err := stdcopy.StdCopy(&out, &out, rc); err != nil {
		b.t.Fatalf("reading the container log: %v", err)
	}
	return out.String()
}

// inspect returns the container's state.
func (b *box) inspect() container.InspectResponse {
	b.t.Helper()
	res, err := b.eng.API.ContainerInspect(context.Background(), b.id,
		client.ContainerInspectOptions{})
	if err != nil {
		b.t.Fatal(err)
	}
	return res.Container
}

// waitHealthy waits until the engine reports the container healthy through the image's
// HEALTHCHECK.
func (b *box) waitHealthy(timeout time.Duration) {
	b.t.Helper()
	b.waitFor(timeout, "the container to become healthy", func() bool {
		st := b.inspect().State
		return st != nil && st.Health != nil && st.Health.Status == container.Healthy
	})
}

// waitFor polls cond until it holds or timeout passes.
func (b *box) waitFor(timeout time.Duration, what string, cond func() bool) {
	b.t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			b.t.Fatalf("timed out after %s waiting for %s; container log:\n%s", timeout, what,
				tail(b.logs(), 4000))
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// restart restarts the container, as a user does after editing scripts in the volume.
func (b *box) restart() {
	b.t.Helper()
	timeout := 10
	if _, err := b.eng.API.ContainerRestart(context.Background(), b.id,
		client.ContainerRestartOptions{Timeout: &timeout}); err != nil {
		b.t.Fatalf("restarting the container: %v", err)
	}
}

// programPID asks supervisord for the pid of a program; 0 when it is not running.
func (b *box) programPID(program string) string {
	b.t.Helper()
	out, _ := b.exec("supervisorctl", "pid", program)
	return strings.TrimSpace(out)
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}
