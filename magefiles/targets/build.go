package targets

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/migdrp/runpod/magefiles/buildcontext"
	"github.com/migdrp/runpod/magefiles/changes"
	"github.com/migdrp/runpod/magefiles/engine"
	"github.com/migdrp/runpod/magefiles/tags"
)

// buildRequest says how build should run; the update verb fills it from its plan.
type buildRequest struct {
	noCache bool
	reason  string // why the build happens, for the log line
}

// build builds the image of tag, unless it is current.
func (s *session) build(ctx context.Context, t tags.Tag) error {
	force, err := s.enabled("FORCE", false)
	if err != nil {
		return err
	}
	noCache, err := s.flag("NO_CACHE")
	if err != nil {
		return err
	}
	eng, err := s.engine(ctx)
	if err != nil {
		return err
	}
	req, skip, err := s.buildDecision(ctx, t, force, noCache)
	if err != nil {
		return err
	}
	if skip != "" {
		s.log.Infof("%s is up to date (%s); FORCE=1 builds anyway", s.names(t.Name).Image, skip)
		return nil
	}
	return s.buildImage(ctx, eng, t, req)
}

// buildImage sends the tag's context to the engine and builds it with the tool's labels.
func (s *session) buildImage(ctx context.Context, eng *engine.Engine, t tags.Tag,
	req buildRequest) error {
	image := s.names(t.Name).Image

	// What goes into the image, and the labels that remember it.
	files, err := changes.Inputs(t.Dir)
	if err != nil {
		return err
	}
	labels, err := changes.ImageLabels(ctx, s.root, t.Dir, files)
	if err != nil {
		return err
	}
	for k, v := range s.ociLabels(ctx, t, labels[changes.LabelRevision]) {
		labels[k] = v
	}
	overlays, err := s.overlays(ctx, eng, t)
	if err != nil {
		return err
	}
	dockerfile, err := labelledDockerfile(t, labels)
	if err != nil {
		return err
	}
	defer os.RemoveAll(filepath.Dir(dockerfile))
	overlays = append(overlays, buildcontext.Overlay{Source: dockerfile, Target: "Dockerfile"})

	// The build itself, streamed like docker build prints it.
	args := map[string]string{}
	if base := s.setting("BASE_IMAGE", ""); base != "" {
		args["BASE_IMAGE"] = base
	}
	mode := "with cache"
	if req.noCache {
		mode = "no cache"
	}
	if req.reason != "" {
		mode += ": " + req.reason
	}
	s.log.Infof("building %s from %s (%s)", image, filepath.Base(t.Dir), mode)
	started := time.Now()
	body, stats := buildcontext.Reader(t.Dir, overlays)
	defer body.Close()
	id, err := eng.Build(ctx, engine.BuildSpec{Image: image, Context: body,
		NoCache: req.noCache, BuildArgs: args, Out: s.stdout})
	if err != nil {
		return err
	}
	st := stats()
	s.log.Infof("built %s (%s) in %s, context %d files, %s", image, shortID(id),
		time.Since(started).Round(100*time.Millisecond), st.Files, humanBytes(st.Bytes))
	return nil
}

// labelledDockerfile writes the tag's Dockerfile with one LABEL instruction appended and
// returns its path. The classic builder turns the labels of the build API into one step per
// label, each a container commit, and the changing creation time defeats the cache of every
// step after it; a single final instruction costs one step.
func labelledDockerfile(t tags.Tag, labels map[string]string) (string, error) {
	src, err := os.ReadFile(filepath.Join(t.Dir, "Dockerfile"))
	if err != nil {
		return "", err
	}
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.Write(src)
	if len(src) > 0 && src[len(src)-1] != '\n' {
		b.WriteByte('\n')
	}
	b.WriteString("# What this image was built from, added by the build tool.\nLABEL")
	for _, k := range keys {
		fmt.Fprintf(&b, " \\\n    %s=%s", k, strconv.Quote(labels[k]))
	}
	b.WriteByte('\n')

	dir, err := os.MkdirTemp("", "runpod-dockerfile-")
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "Dockerfile")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		_ = os.RemoveAll(dir)
		return "", err
	}
	return path, nil
}

// ociLabels are the standard labels of the OCI image spec.
func (s *session) ociLabels(ctx context.Context, t tags.Tag, revision string) map[string]string {
	version := t.Name
	if revision != "" {
		version += "-" + shortRev(revision)
	}
	return map[string]string{
		"org.opencontainers.image.title":    tags.DirPrefix + t.Name,
		"org.opencontainers.image.created":  time.Now().UTC().Format(time.RFC3339),
		"org.opencontainers.image.revision": revision,
		"org.opencontainers.image.source":   s.sourceURL(ctx),
		"org.opencontainers.image.version":  version,
	}
}

// sourceURL is the repository's origin remote without credentials, or the project's home.
func (s *session) sourceURL(ctx context.Context) string {
	out, err := exec.CommandContext(ctx, "git", "-C", s.root, "remote", "get-url", "origin").
		Output()
	u := strings.TrimSpace(string(out))
	if err != nil || u == "" {
		return "https://github.com/migdrp/runpod"
	}
	if i := strings.Index(u, "@"); i >= 0 && strings.Contains(u[:i], "://") {
		u = u[:strings.Index(u, "://")+3] + u[i+1:]
	}
	return u
}

// overlays adds the shared common/ folder to the context of a tag whose Dockerfile copies
// from it, with the workspace sync program the images run at start.
func (s *session) overlays(ctx context.Context, eng *engine.Engine, t tags.Tag) (
	[]buildcontext.Overlay, error) {
	uses, err := changes.CopiesFromCommon(t.Dir)
	if err != nil || !uses {
		return nil, err
	}
	bin, err := s.syncProgram(ctx, eng)
	if err != nil {
		return nil, err
	}
	return []buildcontext.Overlay{
		{Source: filepath.Join(s.root, changes.CommonDir), Target: changes.CommonDir},
		{Source: bin, Target: changes.CommonDir + "/bin/runpod-workspace"},
	}, nil
}

func shortID(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

func shortRev(rev string) string {
	if len(rev) > 7 {
		return rev[:7]
	}
	return rev
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
