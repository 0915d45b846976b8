package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/migdrp/runpod/magefiles/buildcontext"
	"github.com/migdrp/runpod/magefiles/tags"
)

// tagDir is the fixture tag's directory, relative to the copy's root.
const tagDir = tags.DirPrefix + tagName

// probe is one way of doing what a measurement compares: a command with extra settings.
type probe struct {
	method string
	note   string
	env    []string
	argv   []string
}

// timeRounds runs every probe once per round, interleaved so that a slow moment of the
// machine does not land on one method only, and returns one result per probe.
func (b *bench) timeRounds(ctx context.Context, what string, probes []probe) ([]result,
	error) {
	results := make([]result, len(probes))
	for i, p := range probes {
		results[i] = result{what: what, method: p.method, unit: seconds, note: p.note}
	}
	for round := 0; round < b.rounds; round++ {
		for i, p := range probes {
			started := time.Now()
			if _, err := b.commandWith(ctx, p.env, p.argv...); err != nil {
				return nil, err
			}
			results[i].values = append(results[i].values, time.Since(started).Seconds())
			b.remember(ctx)
		}
	}
	return results, nil
}

// commandWith runs argv in the copy with extra settings on top of the run's environment.
func (b *bench) commandWith(ctx context.Context, extra []string, argv ...string) ([]byte,
	error) {
	saved := b.env
	b.env = append(append([]string(nil), saved...), extra...)
	defer func() { b.env = saved }()
	return b.command(ctx, b.repo, argv[0], argv[1:]...)
}

// measureBuild times a build when nothing changed, after one build of each kind made the
// image and warmed the caches.
func (b *bench) measureBuild(ctx context.Context) ([]result, error) {
	logrus.Info("build when nothing changed: first builds")
	if _, err := b.command(ctx, b.repo, b.mage, "build:"+tagName); err != nil {
		return nil, err
	}
	if _, err := b.command(ctx, b.repo, "docker", "build", "-t", b.cliImage, tagDir); err != nil {
		return nil, err
	}
	b.remember(ctx)

	logrus.Info("build when nothing changed: measuring")
	return b.timeRounds(ctx, "build, nothing changed", []probe{
		{method: "this tool: `mage build:bench`", argv: []string{b.mage, "build:" + tagName},
			note: "skips: the image's labels match the committed files"},
		{method: "this tool: `FORCE=1 mage build:bench`", env: []string{"FORCE=1"},
			argv: []string{b.mage, "build:" + tagName},
			note: "sends the context; every step cached"},
		{method: "this tool: `go run mage.go build:bench`",
			argv: []string{"go", "run", "mage.go", "build:" + tagName},
			note: "skips, plus compiling mage.go"},
		{method: "`docker build -t … runpod-bench` (classic builder)",
			argv: []string{"docker", "build", "-t", b.cliImage, tagDir},
			note: "every step cached"},
	})
}

// measureContext compares the bytes sent as build context with 1 GiB of unrelated files in
// the repository: the tool sends the tag's directory, the documented command the whole root.
func (b *bench) measureContext(ctx context.Context) ([]result, error) {
	logrus.Info("build context: writing 1 GiB of unrelated files")
	blob := filepath.Join(b.repo, "models-cache", "blob.bin")
	if err := allocate(blob, 1<<30); err != nil {
		return nil, err
	}
	defer os.Remove(blob)

	// The tool's exact figure: the very tar its build streams to the engine (the fixture
	// copies nothing from common/, so no overlay).
	st, err := buildcontext.Write(io.Discard, filepath.Join(b.repo, tagDir), nil)
	if err != nil {
		return nil, err
	}
	tool := result{what: "build context, 1 GiB elsewhere", method: "this tool", unit: byteCount,
		note: fmt.Sprintf("exact: the tar of %s/ (%d files)", tagDir, st.Files)}
	docker := result{what: "build context, 1 GiB elsewhere",
		method: "`docker build -f runpod-bench/Dockerfile .` at the root", unit: byteCount}
	sendTime := result{what: "build context, 1 GiB elsewhere",
		method: "time of that `docker build`", unit: seconds, note: "the whole build"}

	logrus.Info("build context: measuring the documented docker build at the root")
	for round := 0; round < b.rounds; round++ {
		started := time.Now()
		rep, err := b.rootBuild(ctx)
		if err != nil {
			return nil, err
		}
		sendTime.values = append(sendTime.values, time.Since(started).Seconds())
		docker.values = append(docker.values, rep.sent)
		docker.note = "the docker CLI printed \"" + rep.printed + "\" (decimal units, rounded)"
		if rep.failed {
			sendTime.note = "until the build fails after sending: the Dockerfile's COPY " +
				"lines expect its own folder as context"
		}
		tool.values = append(tool.values, float64(st.Bytes))
	}
	return []result{tool, docker, sendTime}, nil
}

// sendingContext is the classic builder's report of the context it uploaded.
var sendingContext = regexp.MustCompile(`Sending build context to Docker daemon\s+([0-9.]+)\s*` +
	`([kMGT]?B)`)

// rootReport is what the documented build at the root told.
type rootReport struct {
	sent    float64 // bytes of context, as the CLI printed them
	printed string  // the CLI's own figure, e.g. "1.075GB"
	failed  bool    // the build stopped with an error after sending the context
}

// rootBuild runs the documented build at the repository root. The build itself may fail;
// only a missing context report is an error.
func (b *bench) rootBuild(ctx context.Context) (rootReport, error) {
	out, err := b.command(ctx, b.repo, "docker", "build", "-t", b.rootImg,
		"-f", tagDir+"/Dockerfile", ".")
	all := sendingContext.FindAllStringSubmatch(string(out), -1)
	if len(all) == 0 {
		if err == nil {
			err = errors.New("no context size in its output")
		}
		return rootReport{}, fmt.Errorf("docker build at the root: %w", err)
	}
	last := all[len(all)-1]
	n, perr := strconv.ParseFloat(last[1], 64)
	if perr != nil {
		return rootReport{}, fmt.Errorf("reading %q: %w", last[0], perr)
	}
	scale := map[string]float64{"B": 1, "kB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12}
	return rootReport{sent: n * scale[last[2]], printed: last[1] + last[2],
		failed: err != nil}, nil
}

// allocate makes a file of size bytes that takes real disk space, as downloaded models do.
func allocate(path string, size int64) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := syscall.Fallocate(int(f.Fd()), 0, 0, size); err == nil {
		return nil
	}
	// File systems without fallocate get zeros written.
	chunk := make([]byte, 1<<20)
	for written := int64(0); written < size; written += int64(len(chunk)) {
		if _, err := f.Write(chunk); err != nil {
			return fmt.Errorf("writing %s: %w", path, err)
		}
	}
	return nil
}

// measureList times a warm `mage -l` and `go run mage.go -l`.
func (b *bench) measureList(ctx context.Context) ([]result, error) {
	logrus.Info("mage -l: warming up")
	for _, argv := range [][]string{{b.mage, "-l"}, {"go", "run", "mage.go", "-l"}} {
		if _, err := b.commandWith(ctx, nil, argv...); err != nil {
			return nil, err
		}
	}
	logrus.Info("mage -l: measuring")
	return b.timeRounds(ctx, "list targets, warm", []probe{
		{method: "`mage -l` (compiled mage " + mageVersion + ")", argv: []string{b.mage, "-l"},
			note: "mage rebuilds its binary through the warm go build cache"},
		{method: "`go run mage.go -l`", argv: []string{"go", "run", "mage.go", "-l"},
			note: "also links mage.go itself"},
	})
}

// waitServed polls the app on port until path holds want, as proof that a change is live.
func waitServed(ctx context.Context, port int, path, want string, limit time.Duration) error {
	url := "http://127.0.0.1:" + strconv.Itoa(port) + path
	hc := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(limit)
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		if res, err := hc.Do(req); err == nil {
			body, _ := io.ReadAll(res.Body)
			_ = res.Body.Close()
			if strings.Contains(string(body), want) {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not serve %q within %s", url, want, limit)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}
