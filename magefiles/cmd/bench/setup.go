package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/client"
	"github.com/sirupsen/logrus"

	"github.com/migdrp/runpod/magefiles/engine"
	"github.com/migdrp/runpod/magefiles/tags"
	"github.com/migdrp/runpod/magefiles/testbase"
)

const (
	// tagName is the fixture tag added to the copy; its directory is runpod-bench/.
	tagName = "bench"
	// fixturePort is the port the fixture's Dockerfile exposes; the copy gets a free one.
	fixturePort = "18080"
	// mageVersion is the mage the benchmark compiles, the one go.mod requires.
	mageVersion = "v1.17.2"
)

// bench is one benchmark run: the copy of the repository and the names of all it creates.
type bench struct {
	rounds  int
	verbose bool   // copy every command's output to stderr
	source  string // the repository the copy is cloned from
	dir     string // temporary folder holding the copy, the mage binary and the tool's state
	repo    string // the copy
	mage    string // the compiled mage binary
	env     []string

	imageRepo string // IMAGE_REPO of the run, unique to it
	eng       *engine.Engine
	names     tags.Names // container, volume and image of the tool
	cliImage  string     // image of the plain docker build of the tag directory
	rootImg   string     // image of the documented docker build at the repository root
	manual    manualRun  // container, volume and image of the documented update sequence
	port      int        // the fixture app's port, published by the tool on the same number
	made      []string   // IDs of the images the run tagged, superseded ones included
}

// manualRun names what the documented manual sequence works on, apart from the tool's.
type manualRun struct {
	container, volume, image string
	// base is a copy of the base image under another ID, so the manual builds never reuse
	// layers the tool's builds made, as on a machine where only one of the two is used.
	base string
	port int // host port the container's app port is published on
}

// setUp clones the repository with a fixture tag into a temporary folder, compiles mage and
// makes the base image. On failure it removes what it made.
func setUp(ctx context.Context, rounds int, verbose bool) (*bench, error) {
	b := &bench{rounds: rounds, verbose: verbose}
	if err := b.connect(ctx); err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			_ = b.tearDown()
		}
	}()
	for _, step := range []struct {
		what string
		fn   func(context.Context) error
	}{
		{"naming the resources", b.name},
		{"copying the repository", b.copyRepository},
		{"adding the fixture tag", b.addFixtureTag},
		{"compiling mage", b.installMage},
		{"making the base image", b.ensureBase},
	} {
		logrus.Infof("%s", step.what)
		if err := step.fn(ctx); err != nil {
			return nil, fmt.Errorf("%s: %w", step.what, err)
		}
	}
	ok = true
	return b, nil
}

// connect opens the engine and finds the repository around the working directory.
func (b *bench) connect(ctx context.Context) error {
	wd, err := os.Getwd()
	if err != nil {
		return err
	}
	if b.source, err = tags.Root(wd); err != nil {
		return fmt.Errorf("run the benchmark inside the repository: %w", err)
	}
	if b.eng, err = engine.Connect(ctx); err != nil {
		return err
	}
	return nil
}

// name picks unique names, so a run never meets another run's or a user's resources. The
// tool names a tag's volume after the tag alone, so an existing one stops the run.
func (b *bench) name(ctx context.Context) error {
	suffix := randomSuffix()
	repo := "runpod-bench-" + suffix + "/runpod"
	names := tags.NamesFor(repo, tagName)
	exists, err := b.eng.VolumeExists(ctx, names.Volume)
	if err != nil {
		return err
	}
	if exists {
		return fmt.Errorf("volume %s exists already (another benchmark running, or left by "+
			"-keep); remove it first", names.Volume)
	}

	// From here on the names are the run's own, and the clean-up removes what has them.
	b.imageRepo, b.names = repo, names
	b.cliImage = repo + ":docker-build"
	b.rootImg = repo + ":docker-build-root"
	b.manual = manualRun{container: "runpod-bench-manual-" + suffix,
		volume: "bench-manual-" + suffix + "_workspace", image: repo + ":manual",
		base: repo + ":manual-base"}
	if b.port, err = freePort(); err != nil {
		return err
	}
	b.manual.port, err = freePort()
	return err
}

// copyRepository clones the committed HEAD, so the figures belong to a known revision.
func (b *bench) copyRepository(ctx context.Context) error {
	dir, err := os.MkdirTemp("", "runpod-bench-")
	if err != nil {
		return err
	}
	b.dir = dir
	b.repo = filepath.Join(dir, "repo")
	for _, sub := range []string{"tmp", "config", "backups", "magecache", "bin"} {
		if err := os.Mkdir(filepath.Join(dir, sub), 0o755); err != nil {
			return err
		}
	}
	b.mage = filepath.Join(dir, "bin", "mage")
	b.env = append(os.Environ(),
		"IMAGE_REPO="+b.imageRepo,
		"GPUS=none", "DETACH=1", "YES=1", "BIND_ADDRESS=127.0.0.1", "DOCKER_BUILDKIT=0",
		"BACKUP_DIR="+filepath.Join(dir, "backups"),
		"RUNPOD_MAGE_CONFIG_DIR="+filepath.Join(dir, "config"),
		"MAGEFILE_CACHE="+filepath.Join(dir, "magecache"),
		// The tool's lock files and go's scratch files stay inside the run's folder.
		"TMPDIR="+filepath.Join(dir, "tmp"))
	_, err = b.command(ctx, b.source, "git", "clone", "--quiet", b.source, b.repo)
	return err
}

// addFixtureTag copies testdata/tags/runpod-fixture to runpod-bench/ with a free port, places
// its env example, generates the tag's targets and commits it all in the copy.
func (b *bench) addFixtureTag(ctx context.Context) error {
	tagDir := filepath.Join(b.repo, tags.DirPrefix+tagName)
	err := copyTree(filepath.Join(b.repo, "testdata", "tags", "runpod-fixture"), tagDir,
		fixturePort, strconv.Itoa(b.port))
	if err != nil {
		return err
	}
	example, err := os.ReadFile(filepath.Join(b.repo, "testdata", "tags", "fixture.env.example"))
	if err != nil {
		return err
	}
	err = os.WriteFile(filepath.Join(b.repo, "envs", tags.DirPrefix+tagName+".env.example"),
		example, 0o644)
	if err != nil {
		return err
	}
	if _, err := b.command(ctx, b.repo, "go", "run", "./magefiles/cmd/gentargets"); err != nil {
		return err
	}
	return b.commit(ctx, "Add the bench tag")
}

// commit records every change of the copy, as the tool decides from git what changed.
func (b *bench) commit(ctx context.Context, message string) error {
	if _, err := b.command(ctx, b.repo, "git", "add", "-A"); err != nil {
		return err
	}
	_, err := b.command(ctx, b.repo, "git", "-c", "user.name=bench",
		"-c", "user.email=bench@localhost", "commit", "--quiet", "-m", message)
	return err
}

// installMage compiles the mage command into the run's folder.
func (b *bench) installMage(ctx context.Context) error {
	cmd := exec.CommandContext(ctx, "go", "install", "github.com/magefile/mage@"+mageVersion)
	cmd.Dir = b.repo
	cmd.Env = append(b.env, "GOBIN="+filepath.Dir(b.mage))
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go install mage: %v\n%s", err, tail(out))
	}
	return nil
}

func (b *bench) ensureBase(ctx context.Context) error {
	return testbase.Ensure(ctx, b.eng.API, testbase.Busybox)
}

// tearDown removes the containers, volumes and images of the run and its folder, with a
// fresh context: the run's own may be cancelled.
func (b *bench) tearDown() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var failed []string
	if b.eng != nil {
		for _, c := range nonEmpty(b.names.Container, b.manual.container) {
			if b.eng.Remove(ctx, c) != nil {
				failed = append(failed, "container "+c)
			}
		}
		for _, v := range nonEmpty(b.names.Volume, b.manual.volume) {
			_, err := b.eng.API.VolumeRemove(ctx, v, client.VolumeRemoveOptions{Force: true})
			if err != nil && !engine.IsNotFound(err) {
				failed = append(failed, "volume "+v)
			}
		}
		failed = append(failed, b.removeImages(ctx)...)
		_ = b.eng.Close()
	}
	if b.dir != "" {
		if err := os.RemoveAll(b.dir); err != nil {
			failed = append(failed, "folder "+b.dir)
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("could not remove %s", strings.Join(failed, ", "))
	}
	return nil
}

// remember notes the IDs the run's image names point at now, so that images a later build
// supersedes are removed at the end too.
func (b *bench) remember(ctx context.Context) {
	for _, name := range b.imageNames() {
		res, err := b.eng.API.ImageInspect(ctx, name)
		if err == nil && !slices.Contains(b.made, res.ID) {
			b.made = append(b.made, res.ID)
		}
	}
}

func (b *bench) imageNames() []string {
	return []string{b.names.Image, b.cliImage, b.rootImg, b.manual.image, b.manual.base}
}

// removeImages removes the images the run made with the untagged layers only they used. A
// parent goes only after its children, so what fails once is tried again after the rest.
func (b *bench) removeImages(ctx context.Context) []string {
	left := nonEmpty(slices.Concat(b.made, b.imageNames())...)
	slices.Reverse(left)
	for pass := 0; pass < 2 && len(left) > 0; pass++ {
		var again []string
		for _, img := range left {
			_, err := b.eng.API.ImageRemove(ctx, img, client.ImageRemoveOptions{Force: true,
				PruneChildren: true})
			if err != nil && !engine.IsNotFound(err) {
				again = append(again, img)
			}
		}
		left = again
	}
	failed := make([]string, 0, len(left))
	for _, img := range left {
		failed = append(failed, "image "+img)
	}
	return failed
}

// describeLeftovers says what -keep left, so it can be inspected and removed by hand.
func (b *bench) describeLeftovers() {
	logrus.Infof("kept %s (copy in %s)", b.dir, b.repo)
	logrus.Infof("kept containers %s, %s; volumes %s, %s; images %s",
		b.names.Container, b.manual.container, b.names.Volume, b.manual.volume,
		strings.Join(b.imageNames(), ", "))
	if b.eng != nil {
		_ = b.eng.Close()
	}
}

// command runs name in dir with the run's environment and returns its combined output; a
// failure carries the end of that output.
func (b *bench) command(ctx context.Context, dir, name string, args ...string) ([]byte,
	error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = b.env
	out, err := cmd.CombinedOutput()
	if b.verbose {
		fmt.Fprintf(os.Stderr, "$ %s %s\n%s", name, strings.Join(args, " "), out)
	}
	if err != nil {
		return out, fmt.Errorf("%s %s: %v\n%s", name, strings.Join(args, " "), err, tail(out))
	}
	return out, nil
}

// copyTree copies the directory src to dst, replacing old with new in every file.
func copyTree(src, dst, old, new string) error {
	return filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		r, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, r)
		if fi.IsDir() {
			return os.MkdirAll(target, fi.Mode().Perm())
		}
		content, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		content = bytes.ReplaceAll(content, []byte(old), []byte(new))
		return os.WriteFile(target, content, fi.Mode().Perm())
	})
}

// nonEmpty drops the names a run that failed early never set.
func nonEmpty(names ...string) []string {
	return slices.DeleteFunc(names, func(s string) bool { return s == "" })
}

func randomSuffix() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// freePort asks the kernel for a port no one listens on at the moment.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// tail keeps the last lines of a command's output for an error message.
func tail(out []byte) string {
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	if len(lines) > 15 {
		lines = lines[len(lines)-15:]
	}
	return strings.Join(lines, "\n")
}
