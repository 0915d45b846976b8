// Package plan turns what changed in a tag into the steps of an update, following one rules
// table (Rules), and explains each step with the files and the revision behind it.
package plan

import (
	"fmt"
	"strings"

	"github.com/migdrp/runpod/magefiles/changes"
)

// ContainerState is what the engine says about the tag's container.
type ContainerState int

// Container states.
const (
	NoContainer ContainerState = iota
	Running
	Stopped
)

// State is what exists in the engine for the tag.
type State struct {
	ImageExists  bool
	Container    ContainerState
	VolumeExists bool
}

// Overrides are the user's explicit answers (NO_CACHE=0|1, RESET=0|1); nil leaves the decision
// to the rules.
type Overrides struct {
	NoCache *bool
	Reset   *bool
}

// Action is the kind of a step.
type Action int

// The actions, in the order an update carries them out.
const (
	// ActionBuild builds the image (Step.NoCache: without cache) while the old container
	// keeps running, so that a failed build leaves everything as it was.
	ActionBuild Action = iota + 1
	// ActionStop stops the container if it runs and removes it (containers are disposable;
	// the volume stays), so that nothing holds the volume or the name.
	ActionStop
	// ActionResetVolume backs the volume up, then removes it; never the one without the
	// other.
	ActionResetVolume
	// ActionSeedVolume fills a new volume from the image's workspace template, manifest
	// included.
	ActionSeedVolume
	// ActionSyncScripts brings the volume's copy of the scripts up to date, keeping the
	// user's edits.
	ActionSyncScripts
	// ActionStart starts the existing stopped container as it is.
	ActionStart
	// ActionRun creates and starts a new container, detached.
	ActionRun
)

// String says what the action does, as a plan line starts.
func (a Action) String() string {
	switch a {
	case ActionBuild:
		return "build the image"
	case ActionStop:
		return "stop and remove the container (the volume stays)"
	case ActionResetVolume:
		return "back up the volume, then remove it"
	case ActionSeedVolume:
		return "seed the volume from the image's workspace template"
	case ActionSyncScripts:
		return "sync the workspace scripts into the volume"
	case ActionStart:
		return "start the stopped container"
	case ActionRun:
		return "run a new container (detached)"
	}
	return fmt.Sprintf("Action(%d)", int(a))
}

// Step is one thing an update does, and why.
type Step struct {
	Action  Action
	NoCache bool // for ActionBuild
	Reason  string
}

// Destructive says whether the step deletes data users may care about.
func (s Step) Destructive() bool { return s.Action == ActionResetVolume }

// String is the step as one line: what, then why.
func (s Step) String() string {
	what := s.Action.String()
	if s.Action == ActionBuild && s.NoCache {
		what += " without cache"
	} else if s.Action == ActionBuild {
		what += " with cache"
	}
	return what + ": " + s.Reason
}

// Plan is the decision for one tag and the steps that carry it out, in order.
type Plan struct {
	Triggers  []Trigger
	Build     Build
	Volume    Volume
	Container Container
	Steps     []Step
	// Overrides says, per override given, what it changed; for the log.
	Overrides []string
	// Why says how the changes were found (git or digests), from changes.Changes.Why;
	// Notes add what a user might otherwise wonder about.
	Why   string
	Notes []string
}

// Destructive says whether any step deletes data; such a plan needs the user's consent.
func (p Plan) Destructive() bool {
	for _, s := range p.Steps {
		if s.Destructive() {
			return true
		}
	}
	return false
}

// Lines renders the plan for a terminal: how changes were found, the numbered steps, then the
// overrides and notes.
func (p Plan) Lines() []string {
	var lines []string
	if p.Why != "" {
		lines = append(lines, "changes: "+p.Why)
	}
	if len(p.Steps) == 0 {
		lines = append(lines, "nothing to do: the image is current and the container running")
	}
	for i, s := range p.Steps {
		lines = append(lines, fmt.Sprintf("%d. %s", i+1, s))
	}
	for _, o := range p.Overrides {
		lines = append(lines, "override: "+o)
	}
	for _, n := range p.Notes {
		lines = append(lines, "note: "+n)
	}
	return lines
}

// String is Lines joined by newlines.
func (p Plan) String() string { return strings.Join(p.Lines(), "\n") }

// Decide applies the rules to what changed and to what exists, then the overrides, and lists
// the steps in the safe order: build first while the old container keeps running; then stop
// it; back up and reset the volume; seed or sync it; start a container.
func Decide(ch changes.Changes, st State, ov Overrides) Plan {
	p := Plan{Triggers: Triggers(ch, st.ImageExists), Why: ch.Why}
	for _, t := range p.Triggers {
		r := rule(t)
		p.Build = max(p.Build, r.Build)
		p.Volume = max(p.Volume, r.Volume)
		p.Container = max(p.Container, r.Container)
	}
	p.override(ov, ch)
	if len(ch.SameContent) > 0 {
		p.Notes = append(p.Notes, fmt.Sprintf("git names %s, but what goes into the image is "+
			"the same as in it: not a change", strings.Join(ch.SameContent, ", ")))
	}
	why := reasons{ch: ch, plan: &p}

	// Build while the old container keeps running.
	if p.Build != BuildSkip {
		p.Steps = append(p.Steps, Step{ActionBuild, p.Build == BuildNoCache, why.build()})
	}

	// Stop the old container when it is replaced.
	replace := p.Container != ContainerKeep
	if replace && st.Container != NoContainer {
		p.Steps = append(p.Steps, Step{Action: ActionStop,
			Reason: "a new one replaces it: " + why.container(st)})
	}

	// Reset, seed or sync the volume.
	starts := replace || st.Container != Running
	switch {
	case p.Volume == VolumeReset && st.VolumeExists:
		p.Steps = append(p.Steps, Step{Action: ActionResetVolume, Reason: why.reset()},
			Step{Action: ActionSeedVolume, Reason: "the volume was reset"})
	case !st.VolumeExists && starts:
		p.Steps = append(p.Steps, Step{Action: ActionSeedVolume,
			Reason: "the volume does not exist yet; it is filled before the first start"})
	case p.Volume == VolumeSync:
		p.Steps = append(p.Steps, Step{Action: ActionSyncScripts,
			Reason: ch.Describe(changes.Workspace) + "; your own edits are kept"})
	}

	// Start a container.
	switch {
	case replace || st.Container == NoContainer:
		p.Steps = append(p.Steps, Step{Action: ActionRun, Reason: why.container(st)})
	case st.Container == Stopped:
		p.Steps = append(p.Steps, Step{Action: ActionStart,
			Reason: "nothing changed since the image was built"})
	}
	return p
}

// override applies NO_CACHE and RESET and records what each did.
func (p *Plan) override(ov Overrides, ch changes.Changes) {
	if ov.NoCache != nil {
		before := p.Build
		switch {
		case *ov.NoCache:
			p.Build = BuildNoCache
			p.Container = max(p.Container, ContainerRecreate)
		case p.Build == BuildNoCache:
			p.Build = BuildCache
		}
		p.Overrides = append(p.Overrides, fmt.Sprintf("NO_CACHE=%s: %s (the rules said: %s)",
			bit(*ov.NoCache), buildWords(p.Build), buildWords(before)))
	}
	if ov.Reset != nil {
		before := p.Volume
		switch {
		case *ov.Reset:
			p.Volume = VolumeReset
			p.Container = max(p.Container, ContainerRecreate)
		case p.Volume == VolumeReset && ch.Changed(changes.Workspace):
			p.Volume = VolumeSync
		case p.Volume == VolumeReset:
			p.Volume = VolumeKeep
		}
		p.Overrides = append(p.Overrides, fmt.Sprintf("RESET=%s: %s the volume (the rules "+
			"said: %s)", bit(*ov.Reset), volumeWords(p.Volume), volumeWords(before)))
	}
}

func bit(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

func buildWords(b Build) string {
	switch b {
	case BuildCache:
		return "build with cache"
	case BuildNoCache:
		return "build without cache"
	}
	return "no build"
}

func volumeWords(v Volume) string {
	switch v {
	case VolumeSync:
		return "keep and sync the scripts into"
	case VolumeReset:
		return "back up and reset"
	}
	return "keep"
}

// reasons words the why of each step from the changes, naming files and the revision.
type reasons struct {
	ch   changes.Changes
	plan *Plan
}

// changed describes the changed kinds among ks.
func (r reasons) changed(ks ...changes.Kind) []string {
	var out []string
	for _, k := range ks {
		if r.ch.Changed(k) {
			out = append(out, r.ch.Describe(k))
		}
	}
	return out
}

func (r reasons) build() string {
	var parts []string
	switch {
	case r.has(NoImage):
		parts = append(parts, "there is no image yet")
	case r.plan.Build == BuildNoCache:
		parts = r.changed(changes.Dockerfile, changes.Supervisord)
	default:
		parts = r.changed(changes.Dockerfile, changes.Supervisord, changes.Other,
			changes.Workspace)
	}
	if r.has(Unknown) && !r.has(NoImage) {
		parts = append(parts, "the image records nothing of what it was built from, so it is "+
			"rebuilt to record it")
	}
	if len(parts) == 0 {
		parts = append(parts, "asked for with NO_CACHE=1")
	} else if r.plan.Build == BuildNoCache && !r.hasNoCacheRule() {
		parts = append(parts, "without cache as NO_CACHE=1 asks")
	} else if r.plan.Build == BuildCache && r.hasNoCacheRule() {
		parts = append(parts, "with cache as NO_CACHE=0 asks")
	}
	return strings.Join(parts, "; ")
}

func (r reasons) reset() string {
	parts := r.changed(changes.Dockerfile, changes.Supervisord)
	if !r.hasRule(func(rl Rule) bool { return rl.Volume == VolumeReset }) {
		parts = append(parts, "asked for with RESET=1")
	}
	return strings.Join(parts, "; ") + "; a backup is written before anything is removed"
}

func (r reasons) container(st State) string {
	if st.Container == NoContainer {
		return "there is no container"
	}
	var parts []string
	if r.plan.Build != BuildSkip {
		parts = append(parts, "the image is rebuilt")
	}
	if r.ch.Env {
		parts = append(parts, "the env file changed since the container was started")
	}
	if r.plan.Volume == VolumeReset && st.VolumeExists {
		parts = append(parts, "the volume is reset")
	}
	if r.plan.Volume == VolumeSync {
		parts = append(parts, "the scripts in the volume are synced")
	}
	if len(parts) == 0 {
		parts = append(parts, "nothing changed since the image was built")
	}
	return strings.Join(parts, "; ")
}

func (r reasons) has(t Trigger) bool {
	for _, x := range r.plan.Triggers {
		if x == t {
			return true
		}
	}
	return false
}

func (r reasons) hasRule(f func(Rule) bool) bool {
	for _, t := range r.plan.Triggers {
		if f(rule(t)) {
			return true
		}
	}
	return false
}

func (r reasons) hasNoCacheRule() bool {
	return r.hasRule(func(rl Rule) bool { return rl.Build == BuildNoCache })
}
