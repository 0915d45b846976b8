package targets

import (
	"context"
	"fmt"
	"os/exec"
	"strings"

	"github.com/migdrp/runpod/magefiles/changes"
	"github.com/migdrp/runpod/magefiles/engine"
	"github.com/migdrp/runpod/magefiles/matrix"
	"github.com/migdrp/runpod/magefiles/tags"
)

// push publishes the tag's image under its name and under an immutable name carrying the
// revision it was built from; an image with uncommitted changes gets no immutable name.
func (s *session) push(ctx context.Context, t tags.Tag) error {
	eng, err := s.engine(ctx)
	if err != nil {
		return err
	}
	n := s.names(t.Name)
	img, err := eng.Image(ctx, n.Image)
	if err != nil {
		return err
	}
	if !img.Exists {
		return fmt.Errorf("there is no image %s to push; build it with `mage build:%s`",
			n.Image, t.Name)
	}

	// The immutable name must mean exactly one commit's files.
	rev := img.Labels[changes.LabelRevision]
	if rev == "" {
		return fmt.Errorf("%s was not built from a git revision, so it cannot get an "+
			"immutable name; build it inside the repository", n.Image)
	}
	dirty, err := s.uncommitted(ctx, t)
	if err != nil {
		return err
	}
	if dirty == "" && img.Labels[changes.LabelDirty] == "true" {
		dirty = "the image was built from them"
	}
	if dirty != "" {
		return fmt.Errorf("refusing to push %s-%s: the files of %s have uncommitted changes "+
			"(%s); commit them and build again", n.Image, shortRev(rev), t.Name, dirty)
	}
	immutable := n.Image + "-" + shortRev(rev)
	if err := eng.Tag(ctx, n.Image, immutable); err != nil {
		return err
	}

	// Both names go up with the same credentials.
	host, err := engine.RegistryHost(n.Image)
	if err != nil {
		return err
	}
	auth, err := engine.ResolvePushAuth(host)
	if err != nil {
		return err
	}
	for _, ref := range []string{n.Image, immutable} {
		s.log.Infof("pushing %s to %s (%s)", ref, host, auth)
		if err := eng.Push(ctx, ref, auth, s.stdout); err != nil {
			return err
		}
	}
	return nil
}

// uncommitted lists the tag's and common/'s files with uncommitted changes, "" for none.
func (s *session) uncommitted(ctx context.Context, t tags.Tag) (string, error) {
	out, err := exec.CommandContext(ctx, "git", "-C", s.root, "status", "--porcelain", "--",
		rel(s.root, t.Dir), changes.CommonDir).Output()
	if err != nil {
		return "", fmt.Errorf("asking git for uncommitted changes: %v", err)
	}
	var files []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if len(line) > 3 {
			files = append(files, strings.TrimSpace(line[3:]))
		}
	}
	return strings.Join(files, ", "), nil
}

// Matrix prints the tags to build as a GitHub Actions matrix: those changed between the
// event's revisions, or all of them after a shared change, on a schedule or a manual run.
//
// Environment: GITHUB_EVENT_NAME, GITHUB_EVENT_PATH, GITHUB_SHA, GITHUB_OUTPUT, MATRIX_BASE,
// MATRIX_HEAD.
func (Ci) Matrix(ctx context.Context) error {
	s, err := newSession()
	if err != nil {
		return err
	}
	m, err := matrix.Select(ctx, s.root, matrix.EventFromEnv())
	if err != nil {
		return err
	}
	return m.WriteGitHubOutput()
}
