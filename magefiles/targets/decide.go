package targets

import (
	"context"
	"os"
	"path/filepath"

	"github.com/migdrp/runpod/magefiles/changes"
	"github.com/migdrp/runpod/magefiles/engine"
	"github.com/migdrp/runpod/magefiles/envfile"
	"github.com/migdrp/runpod/magefiles/plan"
	"github.com/migdrp/runpod/magefiles/tags"
	"github.com/migdrp/runpod/magefiles/workspace"
)

// examine compares the tag's files and env file with what its image and container were made
// from, and says what exists in the engine.
func (s *session) examine(ctx context.Context, eng *engine.Engine, t tags.Tag) (
	changes.Changes, plan.State, error) {
	n := s.names(t.Name)
	var st plan.State
	files, err := changes.Inputs(t.Dir)
	if err != nil {
		return changes.Changes{}, st, err
	}
	img, err := eng.Image(ctx, n.Image)
	if err != nil {
		return changes.Changes{}, st, err
	}
	ctr, err := eng.Inspect(ctx, n.Container)
	if err != nil {
		return changes.Changes{}, st, err
	}
	vol, err := eng.VolumeExists(ctx, n.Volume)
	if err != nil {
		return changes.Changes{}, st, err
	}
	st = plan.State{ImageExists: img.Exists, VolumeExists: vol}
	switch {
	case ctr.Running:
		st.Container = plan.Running
	case ctr.Exists:
		st.Container = plan.Stopped
	}

	// The env file counts only when both it and a container exist to compare.
	var envNow, envThen string
	if ctr.Exists {
		envThen = ctr.Labels[changes.LabelEnvFingerprint]
		if env, err := envfile.Load(envfile.PathFor(s.root, t.Name)); err == nil {
			envNow, _ = s.envFingerprint(env)
		}
	}
	var labels map[string]string
	if img.Exists {
		labels = img.Labels
		if labels == nil {
			labels = map[string]string{}
		}
	}
	ch, err := changes.Detect(ctx, s.root, t.Dir, files, labels, envNow, envThen)
	return ch, st, err
}

// buildDecision applies the update rules to a build: no build when the image is current,
// no cache when the Dockerfile or supervisord.conf changed. The second result, when not
// empty, says why the build is skipped.
func (s *session) buildDecision(ctx context.Context, t tags.Tag, force bool, noCache *bool) (
	buildRequest, string, error) {
	eng, err := s.engine(ctx)
	if err != nil {
		return buildRequest{}, "", err
	}
	ch, st, err := s.examine(ctx, eng, t)
	if err != nil {
		return buildRequest{}, "", err
	}
	if ch.Method == changes.ByDigests {
		s.log.Infof("changes: %s", ch.Why)
	} else {
		s.log.Debugf("changes: %s", ch.Why)
	}
	p := plan.Decide(ch, st, plan.Overrides{NoCache: noCache})
	for _, o := range p.Overrides {
		s.log.Infof("override: %s", o)
	}
	for _, step := range p.Steps {
		if step.Action == plan.ActionBuild {
			return buildRequest{noCache: step.NoCache, reason: step.Reason}, "", nil
		}
	}
	if force {
		req := buildRequest{reason: "FORCE=1"}
		if noCache != nil {
			req.noCache = *noCache
		}
		return req, "", nil
	}
	why := "nothing it is built from changed"
	if ch.Revision != "" {
		why += " since " + ch.ShortRevision()
	}
	return buildRequest{}, why, nil
}

// syncProgram builds the workspace sync program for the engine's architecture into .runpod/,
// where the build context picks it up.
func (s *session) syncProgram(ctx context.Context, eng *engine.Engine) (string, error) {
	goarch, err := eng.Arch(ctx)
	if err != nil {
		return "", err
	}
	dir := filepath.Join(s.root, ".runpod", "bin", goarch)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	return workspace.BuildBinary(ctx, dir, goarch)
}

// seedIfNew fills a volume that does not exist yet from the tag's workspace template, with
// the manifest that later syncs rely on, before the first container starts.
func (s *session) seedIfNew(ctx context.Context, eng *engine.Engine, t tags.Tag) error {
	n := s.names(t.Name)
	exists, err := eng.VolumeExists(ctx, n.Volume)
	if err != nil || exists {
		return err
	}
	template := filepath.Join(t.Dir, "workspace")
	if _, err := os.Stat(template); err != nil {
		return nil
	}
	sum, err := workspace.Seed(ctx, eng, n.Volume, template)
	if err != nil {
		return err
	}
	s.log.Infof("seeded new volume %s from %s: %s", n.Volume, rel(s.root, template), sum)
	return nil
}

// syncScripts brings the volume's copy of the workspace scripts up to date, keeping what the
// user changed.
func (s *session) syncScripts(ctx context.Context, eng *engine.Engine, t tags.Tag) error {
	n := s.names(t.Name)
	template := filepath.Join(t.Dir, "workspace")
	sum, err := workspace.SyncVolume(ctx, eng, n.Volume, template)
	if err != nil {
		return err
	}
	s.log.Infof("synced %s into volume %s: %s", rel(s.root, template), n.Volume, sum)
	for _, line := range sum.Details() {
		s.log.Warn(line)
	}
	return nil
}
