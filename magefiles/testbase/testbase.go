// Package testbase makes the base images that tests build their fixtures FROM. No registry can
// be reached where the tests run, so the images are made locally, once, and reused by name.
package testbase

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"

	"github.com/moby/moby/client"
	"github.com/sirupsen/logrus"
)

const (
	// Debian is a minimal Debian bookworm made with debootstrap: bash, apt, coreutils.
	Debian = "runpod-test/debian:bookworm"
	// Busybox is a static busybox with its applets linked under /bin: sh, tar, sleep, httpd.
	Busybox = "runpod-test/busybox:1"
)

// Ensure makes image (Debian or Busybox) unless the engine already has it. Concurrent callers
// on one machine wait for each other instead of making it twice.
func Ensure(ctx context.Context, api *client.Client, image string) error {
	unlock, err := lock(image)
	if err != nil {
		return err
	}
	defer unlock()

	if _, err := api.ImageInspect(ctx, image); err == nil {
		return nil
	}
	var make func(context.Context) (io.ReadCloser, error)
	switch image {
	case Debian:
		make = debianRootfs
	case Busybox:
		make = busyboxRootfs
	default:
		return fmt.Errorf("no recipe for test base image %s", image)
	}
	logrus.Infof("making test base image %s (once; later runs reuse it)", image)
	rootfs, err := make(ctx)
	if err != nil {
		return fmt.Errorf("making %s: %w", image, err)
	}
	defer rootfs.Close()
	res, err := api.ImageImport(ctx, client.ImageImportSource{Source: rootfs, SourceName: "-"},
		image, client.ImageImportOptions{Changes: []string{`CMD ["/bin/sh"]`}})
	if err != nil {
		return fmt.Errorf("importing %s: %w", image, err)
	}
	defer res.Close()
	if _, err := io.Copy(io.Discard, res); err != nil {
		return fmt.Errorf("importing %s: %w", image, err)
	}
	return nil
}

// debianRootfs runs debootstrap into a temporary folder and streams it as a tar.
func debianRootfs(ctx context.Context) (io.ReadCloser, error) {
	if _, err := exec.LookPath("debootstrap"); err != nil {
		return nil, fmt.Errorf("debootstrap is not installed (apt-get install debootstrap)")
	}
	dir, err := os.MkdirTemp("", "runpod-debootstrap-")
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, "debootstrap", "--variant=minbase", "bookworm", dir,
		"http://deb.debian.org/debian")
	if out, err := cmd.CombinedOutput(); err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("debootstrap: %v\n%s", err, tail(out))
	}
	tarCmd := exec.CommandContext(ctx, "tar", "-C", dir, "-c", ".")
	out, err := tarCmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := tarCmd.Start(); err != nil {
		return nil, err
	}
	return &cmdReader{ReadCloser: out, cmd: tarCmd, dir: dir}, nil
}

type cmdReader struct {
	io.ReadCloser
	cmd *exec.Cmd
	dir string
}

func (r *cmdReader) Close() error {
	_ = r.ReadCloser.Close()
	err := r.cmd.Wait()
	_ = os.RemoveAll(r.dir)
	return err
}

// busyboxRootfs packs the host's static busybox with a link per applet.
func busyboxRootfs(context.Context) (io.ReadCloser, error) {
	bin, err := findStaticBusybox()
	if err != nil {
		return nil, err
	}
	body, err := os.ReadFile(bin)
	if err != nil {
		return nil, err
	}
	applets, err := exec.Command(bin, "--list").Output()
	if err != nil {
		return nil, fmt.Errorf("listing busybox applets: %w", err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, d := range []string{"bin", "tmp", "etc", "root", "proc", "sys", "dev"} {
		if err := tw.WriteHeader(&tar.Header{Name: d + "/", Typeflag: tar.TypeDir,
			Mode: 0o755}); err != nil {
			return nil, err
		}
	}
	if err := tw.WriteHeader(&tar.Header{Name: "bin/busybox", Mode: 0o755,
		Size: int64(len(body))}); err != nil {
		return nil, err
	}
	if _, err := tw.Write(body); err != nil {
		return nil, err
	}
	for _, a := range bytes.Fields(applets) {
		name := "bin/" + string(a)
		if string(a) == "busybox" {
			continue
		}
		if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeSymlink,
			Linkname: "busybox", Mode: 0o777}); err != nil {
			return nil, err
		}
	}
	passwd := []byte("root:x:0:0:root:/root:/bin/sh\n")
	if err := tw.WriteHeader(&tar.Header{Name: "etc/passwd", Mode: 0o644,
		Size: int64(len(passwd))}); err != nil {
		return nil, err
	}
	if _, err := tw.Write(passwd); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return io.NopCloser(&buf), nil
}

func findStaticBusybox() (string, error) {
	for _, p := range []string{"/bin/busybox", "/usr/bin/busybox"} {
		out, err := exec.Command("file", "-L", p).Output()
		if err == nil && bytes.Contains(out, []byte("statically linked")) {
			return p, nil
		}
		if err != nil {
			if _, statErr := os.Stat(p); statErr == nil {
				// Without file(1), trust Debian's busybox-static package path.
				return p, nil
			}
		}
	}
	return "", fmt.Errorf("no static busybox found (apt-get install busybox-static)")
}

// lock takes a machine-wide lock for making one image.
func lock(image string) (func(), error) {
	name := filepath.Join(os.TempDir(), "runpod-testbase-"+
		filepath.Base(filepath.Clean("/"+image))+".lock")
	f, err := os.OpenFile(name, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		_ = f.Close()
		return nil, err
	}
	return func() { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN); _ = f.Close() }, nil
}

func tail(b []byte) string {
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}
