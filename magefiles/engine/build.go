package engine

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"regexp"
	"strings"
	"sync"

	"github.com/moby/moby/api/types/build"
	"github.com/moby/moby/api/types/jsonstream"
	"github.com/moby/moby/client"
	"github.com/moby/moby/client/pkg/jsonmessage"
)

// BuildSpec says what to build and how.
type BuildSpec struct {
	Image     string            // the name:tag to give the result
	Context   io.Reader         // an uncompressed tar whose root holds the Dockerfile
	NoCache   bool              // build every step again
	BuildArgs map[string]string // only names the Dockerfile declares; never secrets
	Out       io.Writer         // where the build output streams, like docker build prints it
}

// Build builds an image with the classic builder and streams its output. The engine tags the
// image only when every step succeeds, so a failed or interrupted build leaves the previous
// image under its name.
func (e *Engine) Build(ctx context.Context, spec BuildSpec) (string, error) {
	args := make(map[string]*string, len(spec.BuildArgs))
	for k, v := range spec.BuildArgs {
		args[k] = &v
	}
	res, err := e.API.ImageBuild(ctx, spec.Context, client.ImageBuildOptions{
		Tags:        []string{spec.Image},
		NoCache:     spec.NoCache,
		Remove:      true,
		ForceRemove: true,
		Dockerfile:  "Dockerfile",
		BuildArgs:   args,
		Version:     build.BuilderV1,
	})
	if err != nil {
		if ctx.Err() != nil {
			return "", fmt.Errorf("build of %s interrupted: nothing was tagged", spec.Image)
		}
		// A failure to pack the context surfaces wrapped in the request's URL, which holds
		// every label: show the cause alone.
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return "", fmt.Errorf("starting the build of %s: %w", spec.Image, err)
	}
	defer res.Body.Close()

	// Step lines tell the user where a failure happened; the aux message carries the image ID.
	steps := &stepTracker{out: spec.Out}
	var imageID string
	err = jsonmessage.DisplayStream(res.Body, steps, jsonmessage.WithAuxCallback(
		func(m jsonstream.Message) {
			var aux struct{ ID string }
			if m.Aux != nil && json.Unmarshal(*m.Aux, &aux) == nil && aux.ID != "" {
				imageID = aux.ID
			}
		}))
	steps.flush()
	if ctx.Err() != nil {
		return "", fmt.Errorf("build of %s interrupted: nothing was tagged", spec.Image)
	}
	if err != nil {
		where := steps.last()
		if where == "" {
			return "", fmt.Errorf("build of %s failed: %s", spec.Image, oneLine(err))
		}
		return "", fmt.Errorf("build of %s failed at %s: %s", spec.Image, where, oneLine(err))
	}
	if imageID == "" {
		return "", errors.New("the engine finished the build without naming an image")
	}
	return imageID, nil
}

var stepLine = regexp.MustCompile(`^Step (\d+/\d+) : (.*)$`)

// stepTracker passes build output through and remembers the last "Step n/m : ..." line.
type stepTracker struct {
	out     io.Writer
	mu      sync.Mutex
	partial []byte
	step    string
}

func (s *stepTracker) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.partial = append(s.partial, p...)
	for {
		i := strings.IndexByte(string(s.partial), '\n')
		if i < 0 {
			break
		}
		s.note(string(s.partial[:i]))
		s.partial = s.partial[i+1:]
	}
	if s.out == nil {
		return len(p), nil
	}
	return s.out.Write(p)
}

func (s *stepTracker) note(line string) {
	if m := stepLine.FindStringSubmatch(strings.TrimSpace(line)); m != nil {
		s.step = "step " + m[1] + " (" + shorten(m[2], 60) + ")"
	}
}

func (s *stepTracker) flush() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.partial) > 0 {
		s.note(string(s.partial))
		s.partial = nil
	}
}

func (s *stepTracker) last() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.step
}

func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-3] + "..."
}

func oneLine(err error) string {
	sc := bufio.NewScanner(strings.NewReader(err.Error()))
	var parts []string
	for sc.Scan() {
		if t := strings.TrimSpace(sc.Text()); t != "" {
			parts = append(parts, t)
		}
	}
	return strings.Join(parts, " ")
}
