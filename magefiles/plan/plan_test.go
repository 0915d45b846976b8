package plan

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/migdrp/runpod/magefiles/changes"
	"github.com/migdrp/runpod/magefiles/tags"
)

const rev = "1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d"

// changed builds the Changes git would report for the given kinds, one file each.
func changed(env bool, ks ...changes.Kind) changes.Changes {
	files := map[changes.Kind]string{
		changes.Dockerfile:  "runpod-x/Dockerfile",
		changes.Supervisord: "runpod-x/supervisord.conf",
		changes.Workspace:   "runpod-x/workspace/start.sh",
		changes.Other:       "common/jupyter.sh",
	}
	ch := changes.Changes{Kinds: map[changes.Kind][]string{}, Env: env, Revision: rev,
		Method: changes.ByGit, Why: "git compared"}
	for _, k := range ks {
		ch.Kinds[k] = []string{files[k]}
	}
	return ch
}

var (
	yes     = true
	no      = false
	running = State{ImageExists: true, Container: Running, VolumeExists: true}
	stopped = State{ImageExists: true, Container: Stopped, VolumeExists: true}
	absent  = State{ImageExists: true, Container: NoContainer, VolumeExists: true}
	fresh   = State{}
)

const (
	build = ActionBuild
	stop  = ActionStop
	reset = ActionResetVolume
	seed  = ActionSeedVolume
	sync  = ActionSyncScripts
	start = ActionStart
	run   = ActionRun
)

type planCase struct {
	name        string
	ch          changes.Changes
	st          State
	ov          Overrides
	steps       []Action
	noCache     bool
	destructive bool
	mention     []string // words the plan's text must hold
}

var planCases = []planCase{
	// One case per row of the rules table.
	{name: "nothing changed, container running", ch: changed(false), st: running,
		mention: []string{"nothing to do"}},
	{name: "nothing changed, container stopped", ch: changed(false), st: stopped,
		steps: []Action{start}},
	{name: "nothing changed, no container", ch: changed(false), st: absent,
		steps: []Action{run}, mention: []string{"there is no container"}},
	{name: "env file only", ch: changed(true), st: running, steps: []Action{stop, run},
		mention: []string{"env file changed"}},
	{name: "workspace scripts", ch: changed(false, changes.Workspace), st: running,
		steps:   []Action{build, stop, sync, run},
		mention: []string{"runpod-x/workspace/start.sh", "since 1a2b3c4", "with cache"}},
	{name: "other files copied into the image", ch: changed(false, changes.Other), st: running,
		steps: []Action{build, stop, run}, mention: []string{"common/jupyter.sh", "1a2b3c4"}},
	{name: "Dockerfile", ch: changed(false, changes.Dockerfile), st: running,
		steps: []Action{build, stop, reset, seed, run}, noCache: true, destructive: true,
		mention: []string{"runpod-x/Dockerfile", "since 1a2b3c4", "without cache", "backup"}},
	{name: "supervisord.conf", ch: changed(false, changes.Supervisord), st: running,
		steps: []Action{build, stop, reset, seed, run}, noCache: true, destructive: true,
		mention: []string{"runpod-x/supervisord.conf"}},
	{name: "no image yet", ch: changes.Changes{Method: changes.NoImage, Why: "no image"},
		st: fresh, steps: []Action{build, seed, run}, mention: []string{"no image yet"}},
	{name: "no image yet, volume kept from before",
		ch: changes.Changes{Method: changes.NoImage}, st: State{VolumeExists: true},
		steps: []Action{build, run}},
	{name: "image without labels", ch: changes.Changes{Method: changes.ByDigests,
		Unknown: true, Kinds: map[changes.Kind][]string{}}, st: running,
		steps: []Action{build, stop, run}, mention: []string{"records nothing"}},

	{name: "Dockerfile, decided by digests", st: running,
		ch: changes.Changes{Method: changes.ByDigests, Revision: rev,
			Kinds: map[changes.Kind][]string{changes.Dockerfile: nil},
			Why:   "this shallow clone does not contain revision 1a2b3c4"},
		steps: []Action{build, stop, reset, seed, run}, noCache: true, destructive: true,
		mention: []string{"shallow clone", "Dockerfile changed since 1a2b3c4 (by digest)"}},

	// The strongest row wins, column by column.
	{name: "scripts, Dockerfile and env", st: running,
		ch:    changed(true, changes.Workspace, changes.Dockerfile),
		steps: []Action{build, stop, reset, seed, run}, noCache: true, destructive: true},
	{name: "scripts and other files", ch: changed(false, changes.Workspace, changes.Other),
		st: running, steps: []Action{build, stop, sync, run}},
	{name: "env and other files", ch: changed(true, changes.Other), st: stopped,
		steps: []Action{build, stop, run}},

	// What exists changes the steps, not the decision.
	{name: "Dockerfile, no volume yet", ch: changed(false, changes.Dockerfile),
		st:    State{ImageExists: true, Container: NoContainer},
		steps: []Action{build, seed, run}, noCache: true},
	{name: "Dockerfile, stopped container is removed before the reset",
		ch: changed(false, changes.Dockerfile), st: stopped,
		steps: []Action{build, stop, reset, seed, run}, noCache: true, destructive: true},
	{name: "image claimed by Changes but gone from the engine", ch: changed(false),
		st: State{Container: NoContainer, VolumeExists: true}, steps: []Action{build, run}},

	// Overrides.
	{name: "NO_CACHE=1 on a current image", ch: changed(false), st: running,
		ov:    Overrides{NoCache: &yes},
		steps: []Action{build, stop, run}, noCache: true, mention: []string{"NO_CACHE=1"}},
	{name: "NO_CACHE=0 on a Dockerfile change", ch: changed(false, changes.Dockerfile),
		st: running, ov: Overrides{NoCache: &no},
		steps: []Action{build, stop, reset, seed, run}, destructive: true,
		mention: []string{"NO_CACHE=0", "with cache"}},
	{name: "RESET=0 on a Dockerfile change", ch: changed(false, changes.Dockerfile),
		st: running, ov: Overrides{Reset: &no},
		steps: []Action{build, stop, run}, noCache: true, mention: []string{"RESET=0"}},
	{name: "RESET=0 on Dockerfile and scripts", st: running, ov: Overrides{Reset: &no},
		ch:    changed(false, changes.Dockerfile, changes.Workspace),
		steps: []Action{build, stop, sync, run}, noCache: true},
	{name: "RESET=1 on a current image", ch: changed(false), st: running,
		ov:    Overrides{Reset: &yes},
		steps: []Action{stop, reset, seed, run}, destructive: true,
		mention: []string{"RESET=1"}},
	{name: "RESET=1 without a volume", ch: changed(false),
		st:    State{ImageExists: true, Container: NoContainer},
		ov:    Overrides{Reset: &yes},
		steps: []Action{seed, run}},
}

func TestDecideFollowsTheRules(t *testing.T) {
	for _, c := range planCases {
		t.Run(c.name, func(t *testing.T) {
			p := Decide(c.ch, c.st, c.ov)
			var got []Action
			for _, s := range p.Steps {
				got = append(got, s.Action)
				if s.Action == ActionBuild && s.NoCache != c.noCache {
					t.Errorf("build without cache = %v, want %v", s.NoCache, c.noCache)
				}
				if s.Reason == "" {
					t.Errorf("step %v has no reason", s.Action)
				}
			}
			if !reflect.DeepEqual(got, c.steps) {
				t.Errorf("steps %v, want %v\n%s", got, c.steps, p)
			}
			if p.Destructive() != c.destructive {
				t.Errorf("destructive = %v, want %v", p.Destructive(), c.destructive)
			}
			text := p.String()
			for _, m := range c.mention {
				if !strings.Contains(text, m) {
					t.Errorf("plan does not mention %q:\n%s", m, text)
				}
			}
		})
	}
}

func TestEveryRuleHasACase(t *testing.T) {
	covered := map[Trigger]bool{}
	for _, c := range planCases {
		for _, tr := range Triggers(c.ch, c.st.ImageExists) {
			covered[tr] = true
		}
	}
	for _, r := range Rules {
		if !covered[r.Trigger] {
			t.Errorf("rule %q has no case in the table test", r.Changed)
		}
	}
}

func TestStepsRunInTheSafeOrder(t *testing.T) {
	// Whatever the plan, actions never go backwards: build before stop, stop before the
	// volume is touched, the container last.
	for _, c := range planCases {
		p := Decide(c.ch, c.st, c.ov)
		for i := 1; i < len(p.Steps); i++ {
			if p.Steps[i].Action <= p.Steps[i-1].Action {
				t.Errorf("%s: %v after %v", c.name, p.Steps[i].Action, p.Steps[i-1].Action)
			}
		}
	}
}

func TestOverridesAreRecorded(t *testing.T) {
	p := Decide(changed(false, changes.Dockerfile), running,
		Overrides{NoCache: &no, Reset: &no})
	if len(p.Overrides) != 2 || !strings.Contains(p.Overrides[0], "NO_CACHE=0") ||
		!strings.Contains(p.Overrides[1], "RESET=0") {
		t.Errorf("overrides %q, want one line for each", p.Overrides)
	}
	if len(Decide(changed(false), running, Overrides{}).Overrides) != 0 {
		t.Error("an override was recorded that nobody gave")
	}
}

func TestSameContentIsExplained(t *testing.T) {
	ch := changed(false)
	ch.SameContent = []string{"runpod-x/NOTES.md"}
	if text := Decide(ch, running, Overrides{}).String(); !strings.Contains(text,
		"runpod-x/NOTES.md") {
		t.Errorf("plan does not say why a file git names is no change:\n%s", text)
	}
}

func TestMarkdownHasOneRowPerRule(t *testing.T) {
	lines := strings.Split(strings.TrimSpace(Markdown()), "\n")
	if len(lines) != len(Rules)+2 {
		t.Fatalf("%d lines, want header, separator and %d rows", len(lines), len(Rules))
	}
	for i, l := range lines {
		if strings.Count(l, "|") != 5 {
			t.Errorf("line %d has not 4 cells: %s", i+1, l)
		}
	}
}

func TestReadmeShowsTheRulesTable(t *testing.T) {
	root, err := tags.Root(".")
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), Markdown()) {
		t.Errorf("README.md does not hold the rules table the code follows; paste this:\n%s",
			Markdown())
	}
}
