package targets

import (
	"context"
	"fmt"

	"github.com/migdrp/runpod/magefiles/changes"
	"github.com/migdrp/runpod/magefiles/engine"
	"github.com/migdrp/runpod/magefiles/plan"
	"github.com/migdrp/runpod/magefiles/tags"
)

// Scripts syncs runpod-<tag>/workspace into the tag's volume, keeping the user's edits and the
// volume, and restarts a running container.
//
// Environment: IMAGE_REPO, DOCKER_HOST.
func (Update) Scripts(ctx context.Context, tag string) error {
	return with(ctx, tag, (*session).updateScripts)
}

// decide returns the plan of tag under the NO_CACHE and RESET overrides.
func (s *session) decide(ctx context.Context, eng *engine.Engine, t tags.Tag) (plan.Plan,
	error) {
	noCache, err := s.flag("NO_CACHE")
	if err != nil {
		return plan.Plan{}, err
	}
	reset, err := s.flag("RESET")
	if err != nil {
		return plan.Plan{}, err
	}
	ch, st, err := s.examine(ctx, eng, t)
	if err != nil {
		return plan.Plan{}, err
	}
	return plan.Decide(ch, st, plan.Overrides{NoCache: noCache, Reset: reset}), nil
}

// plan prints what update would do and why; it changes nothing.
func (s *session) plan(ctx context.Context, t tags.Tag) error {
	eng, err := s.engine(ctx)
	if err != nil {
		s.log.Warnf("%v", err)
		s.log.Warnf("without the engine there is no telling what is built; git says:")
		return s.printGitStatus(ctx, t)
	}
	p, err := s.decide(ctx, eng, t)
	if err != nil {
		return err
	}
	fmt.Fprintf(s.stdout, "update:%s would:\n", t.Name)
	for _, line := range p.Lines() {
		fmt.Fprintln(s.stdout, "  "+line)
	}
	return nil
}

// printGitStatus shows the uncommitted changes of the tag's files.
func (s *session) printGitStatus(ctx context.Context, t tags.Tag) error {
	files, err := s.uncommitted(ctx, t)
	if err != nil {
		return err
	}
	if files == "" {
		files = "none"
	}
	fmt.Fprintf(s.stdout, "uncommitted changes in %s and %s: %s\n", rel(s.root, t.Dir),
		changes.CommonDir, files)
	return nil
}

// update carries the plan out: build first while the old container runs, so a failed build
// touches nothing; then stop, back up and reset the volume if planned, seed or sync it, and
// start the container detached.
func (s *session) update(ctx context.Context, t tags.Tag) error {
	unlock, err := lockTag(s.names(t.Name).Container)
	if err != nil {
		return err
	}
	defer unlock()
	eng, err := s.engine(ctx)
	if err != nil {
		return err
	}
	p, err := s.decide(ctx, eng, t)
	if err != nil {
		return err
	}
	s.log.Infof("changes: %s", p.Why)
	for _, o := range p.Overrides {
		s.log.Infof("override: %s", o)
	}
	if len(p.Steps) == 0 {
		s.log.Infof("%s is up to date and running: nothing to do", t.Name)
		return nil
	}
	if p.Destructive() {
		if err := s.confirmVolumeRemoval(s.names(t.Name).Volume); err != nil {
			return err
		}
	}
	for _, step := range p.Steps {
		s.log.Infof("%s", step)
		if err := s.carryOut(ctx, eng, t, step); err != nil {
			return err
		}
	}
	return nil
}

func (s *session) carryOut(ctx context.Context, eng *engine.Engine, t tags.Tag,
	step plan.Step) error {
	n := s.names(t.Name)
	switch step.Action {
	case plan.ActionBuild:
		if err := s.buildImage(ctx, eng, t, buildRequest{noCache: step.NoCache,
			reason: step.Reason}); err != nil {
			return fmt.Errorf("%w; nothing else was changed", err)
		}
	case plan.ActionStop:
		return s.stop(ctx, t)
	case plan.ActionResetVolume:
		return s.backupAndRemoveVolume(ctx, eng, t)
	case plan.ActionSeedVolume:
		return s.seedIfNew(ctx, eng, t)
	case plan.ActionSyncScripts:
		return s.syncScripts(ctx, eng, t)
	case plan.ActionStart:
		if err := eng.Start(ctx, n.Container); err != nil {
			return err
		}
		s.log.Infof("started %s; follow it with `mage logs:%s`", n.Container, t.Name)
	case plan.ActionRun:
		env, err := s.envFile(t)
		if err != nil {
			return err
		}
		return s.startContainer(ctx, eng, t, env, true)
	}
	return nil
}

// updateScripts syncs the workspace template into the volume and restarts a running
// container so its services pick the scripts up.
func (s *session) updateScripts(ctx context.Context, t tags.Tag) error {
	eng, err := s.engine(ctx)
	if err != nil {
		return err
	}
	n := s.names(t.Name)
	if err := s.syncScripts(ctx, eng, t); err != nil {
		return err
	}
	st, err := eng.Inspect(ctx, n.Container)
	if err != nil || !st.Running {
		return err
	}
	if err := eng.Restart(ctx, n.Container); err != nil {
		return err
	}
	s.log.Infof("restarted %s", n.Container)
	return nil
}
