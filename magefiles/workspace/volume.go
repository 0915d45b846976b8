package workspace

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
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

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/sirupsen/logrus"

	"github.com/migdrp/runpod/magefiles/engine"
)

// BinaryPackage is the command that runs the sync in a container; images ship it as
// BinaryPath.
const (
	BinaryPackage = "github.com/migdrp/runpod/magefiles/cmd/runpod-workspace"
	BinaryPath    = "/usr/local/bin/runpod-workspace"
)

// imageRepo names the tiny image that holds only the sync binary; its tag is the binary's
// checksum, so a changed binary gets a new image and an unchanged one is reused.
var imageRepo = "runpod-mage/workspace"

// Seed fills a new or empty volume from templateDir, manifest included. It is SyncVolume: on
// an empty volume every template file is added.
func Seed(ctx context.Context, eng *engine.Engine, volume, templateDir string) (Summary, error) {
	return SyncVolume(ctx, eng, volume, templateDir)
}

// SyncVolume brings the Docker volume in step with templateDir, keeping what the user changed.
// It runs the sync binary in a throwaway container of a tiny image, so it works for any tag
// (no shell needed in the tag's image) and on remote engines: the template travels through the
// archive API, never a bind mount. The volume is created if missing.
func SyncVolume(ctx context.Context, eng *engine.Engine, volume, templateDir string) (Summary,
	error) {
	fail := func(err error) (Summary, error) {
		return Summary{}, fmt.Errorf("syncing %s into volume %s: %w", templateDir, volume, err)
	}
	// The template is scripts, small: packing it first makes a problem with it read as such,
	// before anything exists on the engine.
	var tmpl bytes.Buffer
	if err := writeTemplateTar(&tmpl, templateDir); err != nil {
		return fail(err)
	}
	image, err := ensureImage(ctx, eng)
	if err != nil {
		return fail(err)
	}

	// A container that mounts the volume gets the template, runs the sync and tells its
	// summary; it is removed whatever happens.
	var sum Summary
	err = eng.WithVolumeContainer(ctx, engine.VolumeContainer{
		Name:   "runpod-workspace-sync",
		Image:  image,
		Cmd:    []string{"sync", "--json", "/workspace_template", "/workspace"},
		Volume: volume,
		Labels: map[string]string{"runpod-mage.role": "workspace-sync",
			"runpod-mage.volume": volume},
	}, func(ctx context.Context, id string) error {
		if err := copyTemplate(ctx, eng, id, &tmpl); err != nil {
			return err
		}
		sum, err = runSync(ctx, eng, id)
		return err
	})
	if err != nil {
		return fail(err)
	}
	logrus.Debugf("volume %s: %s", volume, sum)
	return sum, nil
}

func copyTemplate(ctx context.Context, eng *engine.Engine, id string, tmpl io.Reader) error {
	_, err := eng.API.CopyToContainer(ctx, id, client.CopyToContainerOptions{
		DestinationPath: "/workspace_template",
		Content:         tmpl,
	})
	if err != nil {
		return fmt.Errorf("copying the template into the sync container: %w", err)
	}
	return nil
}

// writeTemplateTar packs the template's directories and regular files (symlinks to files
// become files), owned by root, as the sync reads them.
func writeTemplateTar(w io.Writer, dir string) error {
	if _, err := os.Stat(dir); err != nil {
		return fmt.Errorf("reading template: %w", err)
	}
	tw := tar.NewWriter(w)
	err := filepath.WalkDir(dir, func(src string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, src)
		if err != nil || rel == "." {
			return err
		}
		info, err := os.Stat(src)
		if err != nil {
			return err
		}
		name := filepath.ToSlash(rel)
		switch {
		case d.IsDir():
			return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/",
				Mode: 0o755, ModTime: info.ModTime()})
		case !info.Mode().IsRegular():
			return nil
		}
		f, err := os.Open(src)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name,
			Mode: int64(info.Mode().Perm()), Size: info.Size(), ModTime: info.ModTime()}); err != nil {
			return err
		}
		_, err = io.Copy(tw, f)
		return err
	})
	if err != nil {
		return fmt.Errorf("packing template: %w", err)
	}
	return tw.Close()
}

// runSync starts the container, waits for it and decodes the JSON summary it prints last.
func runSync(ctx context.Context, eng *engine.Engine, id string) (Summary, error) {
	wait := eng.API.ContainerWait(ctx, id, client.ContainerWaitOptions{
		Condition: container.WaitConditionNextExit})
	if _, err := eng.API.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
		return Summary{}, fmt.Errorf("starting sync container: %w", err)
	}
	var code int64
	select {
	case res := <-wait.Result:
		if res.Error != nil {
			return Summary{}, fmt.Errorf("waiting for sync container: %s", res.Error.Message)
		}
		code = res.StatusCode
	case err := <-wait.Error:
		return Summary{}, fmt.Errorf("waiting for sync container: %w", err)
	case <-ctx.Done():
		return Summary{}, ctx.Err()
	}

	logs, err := eng.API.ContainerLogs(ctx, id, client.ContainerLogsOptions{ShowStdout: true,
		ShowStderr: true})
	if err != nil {
		return Summary{}, fmt.Errorf("reading sync output: %w", err)
	}
	defer logs.Close()
	var stdout, stderr bytes.Buffer
	if _, err := stdcopy.StdCopy(&stdout, &stderr, logs); err != nil {
		return Summary{}, fmt.Errorf("reading sync output: %w", err)
	}
	if code != 0 {
		return Summary{}, fmt.Errorf("sync exited with code %d: %s", code,
			lastLine(stderr.String()))
	}
	var sum Summary
	if err := json.Unmarshal([]byte(lastLine(stdout.String())), &sum); err != nil {
		return Summary{}, fmt.Errorf("decoding sync summary %q: %w", lastLine(stdout.String()), err)
	}
	return sum, nil
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return s
}

// ensureImage returns the tiny image holding the sync binary built for the engine's
// architecture, importing it when the engine does not have it yet.
func ensureImage(ctx context.Context, eng *engine.Engine) (string, error) {
	arch, err := eng.Arch(ctx)
	if err != nil {
		return "", err
	}
	bin, err := binaryFor(ctx, arch)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(bin)
	image := imageRepo + ":" + hex.EncodeToString(sum[:])[:12]
	if _, err := eng.API.ImageInspect(ctx, image); err == nil {
		return image, nil
	} else if !engine.IsNotFound(err) {
		return "", fmt.Errorf("looking for %s: %w", image, err)
	}

	logrus.Infof("making image %s (the workspace sync binary, once per version)", image)
	err = eng.ImportImage(ctx, image, bytes.NewReader(imageTar(bin)),
		`ENTRYPOINT ["`+BinaryPath+`"]`, `LABEL org.opencontainers.image.title="runpod-workspace"`)
	if err != nil {
		return "", err
	}
	pruneOldImages(ctx, eng, image)
	return image, nil
}

// pruneOldImages removes the images of earlier sync binaries, so they do not pile up. One
// still used by a container stays; failing to remove is harmless and only logged.
func pruneOldImages(ctx context.Context, eng *engine.Engine, keep string) {
	res, err := eng.API.ImageList(ctx, client.ImageListOptions{
		Filters: client.Filters{}.Add("reference", imageRepo)})
	if err != nil {
		logrus.Debugf("listing old %s images: %v", imageRepo, err)
		return
	}
	for _, img := range res.Items {
		for _, tag := range img.RepoTags {
			if tag == keep {
				continue
			}
			if _, err := eng.API.ImageRemove(ctx, tag, client.ImageRemoveOptions{}); err != nil {
				logrus.Debugf("keeping old image %s: %v", tag, err)
			}
		}
	}
}

// imageTar is the whole root filesystem of the tiny image: the binary and the two mount points.
func imageTar(bin []byte) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, dir := range []string{"usr/", "usr/local/", "usr/local/bin/", "workspace/",
		"workspace_template/"} {
		_ = tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dir, Mode: 0o755})
	}
	_ = tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: "tmp/", Mode: 0o1777})
	_ = tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: strings.TrimPrefix(BinaryPath,
		"/"), Mode: 0o755, Size: int64(len(bin))})
	_, _ = tw.Write(bin)
	_ = tw.Close()
	return buf.Bytes()
}

var (
	binariesMu sync.Mutex
	binaries   = map[string][]byte{}
)

// binaryFor builds the sync binary for linux/goarch once per process.
func binaryFor(ctx context.Context, goarch string) ([]byte, error) {
	binariesMu.Lock()
	defer binariesMu.Unlock()
	if bin, ok := binaries[goarch]; ok {
		return bin, nil
	}
	dir, err := os.MkdirTemp("", "runpod-workspace-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	path, err := BuildBinary(ctx, dir, goarch)
	if err != nil {
		return nil, err
	}
	bin, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	binaries[goarch] = bin
	return bin, nil
}

// BuildBinary compiles the sync command as a static linux/goarch binary named
// runpod-workspace in outDir and returns its path. The build is reproducible (no paths, no VCS
// stamp), so unchanged sources give identical bytes. It needs the Go toolchain and a working
// directory inside this module, as every mage target has.
func BuildBinary(ctx context.Context, outDir, goarch string) (string, error) {
	out := filepath.Join(outDir, "runpod-workspace")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-buildvcs=false",
		"-ldflags=-s -w", "-o", out, BinaryPackage)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+goarch)
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building %s for linux/%s: %v\n%s", BinaryPackage, goarch, err,
			strings.TrimSpace(string(msg)))
	}
	return out, nil
}
