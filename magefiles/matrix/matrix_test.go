package matrix

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// repo is a real git repository with three tags, one commit made by newRepo.
type repo struct {
	t    *testing.T
	root string
}

func newRepo(t *testing.T) *repo {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed")
	}
	r := &repo{t: t, root: t.TempDir()}
	r.git("init", "-q", "-b", "main")
	r.git("config", "user.email", "test@example.com")
	r.git("config", "user.name", "test")
	r.git("config", "commit.gpgsign", "false")
	for _, tag := range []string{"alpha", "beta", "gamma"} {
		r.write("runpod-"+tag+"/Dockerfile", "FROM scratch\n")
		r.write("runpod-"+tag+"/workspace/start.sh", "#!/bin/sh\n")
	}
	r.write("common/start.sh", "#!/bin/sh\n")
	r.write("magefiles/magefile.go", "package main\n")
	r.write("go.mod", "module example.com/x\n")
	r.write("README.md", "docs\n")
	r.commit("initial")
	return r
}

func (r *repo) git(args ...string) string {
	r.t.Helper()
	cmd := exec.Command("git", append([]string{"-C", r.root}, args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		r.t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out.String())
	}
	return strings.TrimSpace(out.String())
}

func (r *repo) write(path, content string) {
	r.t.Helper()
	p := filepath.Join(r.root, path)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		r.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		r.t.Fatal(err)
	}
}

// commit records every change and returns the new revision.
func (r *repo) commit(msg string) string {
	r.git("add", "-A")
	r.git("commit", "-q", "-m", msg)
	return r.git("rev-parse", "HEAD")
}

func (r *repo) head() string { return r.git("rev-parse", "HEAD") }

func TestSelectPicksTagsFromChangedFiles(t *testing.T) {
	cases := []struct {
		name   string
		change func(r *repo)
		want   []string
	}{
		{"one tag's script", func(r *repo) {
			r.write("runpod-beta/workspace/start.sh", "#!/bin/sh\necho changed\n")
		}, []string{"beta"}},
		{"two tags", func(r *repo) {
			r.write("runpod-alpha/Dockerfile", "FROM scratch\nLABEL a=b\n")
			r.write("runpod-gamma/new.txt", "x")
		}, []string{"alpha", "gamma"}},
		{"common files", func(r *repo) {
			r.write("common/start.sh", "#!/bin/sh\necho shared\n")
		}, []string{"alpha", "beta", "gamma"}},
		{"the tool", func(r *repo) {
			r.write("magefiles/magefile.go", "package main\n// changed\n")
		}, []string{"alpha", "beta", "gamma"}},
		{"go.mod", func(r *repo) {
			r.write("go.mod", "module example.com/y\n")
		}, []string{"alpha", "beta", "gamma"}},
		{"the workflow", func(r *repo) {
			r.write(".github/workflows/build.yml", "on: push\n")
		}, []string{"alpha", "beta", "gamma"}},
		{"rename between tags", func(r *repo) {
			r.git("mv", "runpod-alpha/workspace/start.sh", "runpod-gamma/workspace/moved.sh")
		}, []string{"alpha", "gamma"}},
		{"unrelated docs", func(r *repo) {
			r.write("README.md", "more docs\n")
		}, []string{}},
		{"removed tag", func(r *repo) {
			r.git("rm", "-r", "-q", "runpod-beta")
		}, []string{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := newRepo(t)
			base := r.head()
			c.change(r)
			head := r.commit(c.name)

			m, err := Select(context.Background(), r.root,
				Event{Name: "push", Base: base, Head: head})
			if err != nil {
				t.Fatal(err)
			}
			if got := m.Tags(); !reflect.DeepEqual(got, c.want) {
				t.Errorf("selected %v, want %v (%s)", got, c.want, m.Reason)
			}
		})
	}
}

func TestSelectEveryTagWithoutAComparison(t *testing.T) {
	r := newRepo(t)
	base := r.head()
	r.write("README.md", "only docs\n")
	head := r.commit("docs")
	all := []string{"alpha", "beta", "gamma"}

	cases := []struct {
		name string
		ev   Event
	}{
		{"schedule", Event{Name: "schedule", Base: base, Head: head}},
		{"manual run", Event{Name: "workflow_dispatch", Base: base, Head: head}},
		{"new branch push", Event{Name: "push", Base: strings.Repeat("0", 40), Head: head}},
		{"no base", Event{Head: head}},
		{"base not in clone", Event{Name: "push",
			Base: "1234567890abcdef1234567890abcdef12345678", Head: head}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, err := Select(context.Background(), r.root, c.ev)
			if err != nil {
				t.Fatal(err)
			}
			if got := m.Tags(); !reflect.DeepEqual(got, all) {
				t.Errorf("selected %v, want every tag", got)
			}
			if m.Reason == "" {
				t.Error("no reason given for selecting every tag")
			}
		})
	}
}

// A pull request is compared with the merge base: changes made on main after the branch point
// do not select tags the pull request never touched.
func TestSelectPullRequestUsesMergeBase(t *testing.T) {
	r := newRepo(t)
	r.git("checkout", "-q", "-b", "feature")
	r.write("runpod-alpha/workspace/start.sh", "#!/bin/sh\necho feature\n")
	head := r.commit("feature")
	r.git("checkout", "-q", "main")
	r.write("runpod-gamma/workspace/start.sh", "#!/bin/sh\necho main\n")
	base := r.commit("main moves on")

	m, err := Select(context.Background(), r.root,
		Event{Name: "pull_request", Base: base, Head: head})
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Tags(); !reflect.DeepEqual(got, []string{"alpha"}) {
		t.Errorf("selected %v, want [alpha]", got)
	}
}

// A clone made with depth 1 lacks the base revision; every tag is built instead of failing.
func TestSelectShallowCloneSelectsEveryTag(t *testing.T) {
	r := newRepo(t)
	base := r.head()
	r.write("runpod-beta/Dockerfile", "FROM scratch\nLABEL x=y\n")
	head := r.commit("beta")
	clone := filepath.Join(t.TempDir(), "clone")
	r.git("clone", "-q", "--depth", "1", "file://"+r.root, clone)

	m, err := Select(context.Background(), clone, Event{Name: "push", Base: base, Head: head})
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Tags(); len(got) != 3 {
		t.Errorf("selected %v in a shallow clone, want every tag", got)
	}
	if !strings.Contains(m.Reason, "not in this clone") {
		t.Errorf("reason %q does not say the base is missing", m.Reason)
	}
}

func TestWriteGitHubOutput(t *testing.T) {
	out := filepath.Join(t.TempDir(), "github_output")
	if err := os.WriteFile(out, []byte("earlier=1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		m          Matrix
		json, step string
	}{
		{Matrix{Include: []Entry{{"alpha"}, {"beta"}}},
			`{"include":[{"tag":"alpha"},{"tag":"beta"}]}`,
			"matrix={\"include\":[{\"tag\":\"alpha\"},{\"tag\":\"beta\"}]}\ncount=2\n"},
		{Matrix{}, `{"include":[]}`, "matrix={\"include\":[]}\ncount=0\n"},
	}
	want := "earlier=1\n"
	for _, c := range cases {
		var stdout bytes.Buffer
		if err := c.m.writeOutputs(&stdout, out); err != nil {
			t.Fatal(err)
		}
		if got := strings.TrimSpace(stdout.String()); got != c.json {
			t.Errorf("stdout %s, want %s", got, c.json)
		}
		want += c.step
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Errorf("GITHUB_OUTPUT holds\n%s\nwant\n%s", got, want)
	}
}

func TestEventFromEnv(t *testing.T) {
	cases := []struct {
		name, event, payload string
		env                  map[string]string
		want                 Event
	}{
		{"push", "push", `{"before":"aaa","after":"bbb","ref":"refs/heads/main"}`,
			map[string]string{"GITHUB_SHA": "bbb"},
			Event{Name: "push", Base: "aaa", Head: "bbb"}},
		{"pull request", "pull_request",
			`{"number":7,"pull_request":{"base":{"sha":"b1","ref":"main"},` +
				`"head":{"sha":"h1","ref":"x"}}}`,
			map[string]string{"GITHUB_SHA": "merge"},
			Event{Name: "pull_request", Base: "b1", Head: "h1"}},
		{"schedule", "schedule", `{"schedule":"17 4 * * 1"}`,
			map[string]string{"GITHUB_SHA": "ccc"},
			Event{Name: "schedule", Head: "ccc"}},
		{"overrides", "push", `{"before":"aaa","after":"bbb"}`,
			map[string]string{"MATRIX_BASE": "x1", "MATRIX_HEAD": "x2"},
			Event{Name: "push", Base: "x1", Head: "x2"}},
		{"broken payload", "push", `{"before":`, map[string]string{"GITHUB_SHA": "ddd"},
			Event{Name: "push", Head: "ddd"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "event.json")
			if err := os.WriteFile(path, []byte(c.payload), 0o644); err != nil {
				t.Fatal(err)
			}
			for _, k := range []string{"GITHUB_SHA", "MATRIX_BASE", "MATRIX_HEAD"} {
				t.Setenv(k, c.env[k])
			}
			t.Setenv("GITHUB_EVENT_NAME", c.event)
			t.Setenv("GITHUB_EVENT_PATH", path)
			if got := EventFromEnv(); got != c.want {
				t.Errorf("got %+v, want %+v", got, c.want)
			}
		})
	}
}
