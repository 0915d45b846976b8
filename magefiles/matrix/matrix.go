// Package matrix decides which image tags a CI run builds, from the files that changed between
// two git revisions, and writes the answer as a GitHub Actions matrix.
package matrix

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"

	"github.com/sirupsen/logrus"

	"github.com/migdrp/runpod/magefiles/tags"
)

// Event is what triggered a run: its name as GitHub spells it and the two revisions to compare.
type Event struct {
	Name string // push, pull_request, schedule, workflow_dispatch; empty outside GitHub
	Base string // revision the changes are measured from; empty or all zeros when unknown
	Head string // revision being built; empty means HEAD
}

// Entry is one job of the matrix.
type Entry struct {
	Tag string `json:"tag"`
}

// Matrix is the GitHub Actions matrix of tags to build. It encodes as {"include":[...]}, which
// GitHub expands into one job per entry.
type Matrix struct {
	Include []Entry `json:"include"`
	// Reason says in one line why these tags were selected.
	Reason string `json:"-"`
}

// Tags lists the selected tag names.
func (m Matrix) Tags() []string {
	names := make([]string, len(m.Include))
	for i, e := range m.Include {
		names[i] = e.Tag
	}
	return names
}

// JSON is the matrix as one line of JSON; an empty selection is {"include":[]}.
func (m Matrix) JSON() string {
	include := m.Include
	if include == nil {
		include = []Entry{}
	}
	b, _ := json.Marshal(struct {
		Include []Entry `json:"include"`
	}{include})
	return string(b)
}

// WriteGitHubOutput prints the matrix JSON on stdout and, when GITHUB_OUTPUT names a file (as it
// does inside a GitHub Actions step), appends the step outputs `matrix` and `count` to it. The
// count lets the workflow skip the build job when nothing is selected, because GitHub rejects a
// matrix without entries.
func (m Matrix) WriteGitHubOutput() error {
	return m.writeOutputs(os.Stdout, os.Getenv("GITHUB_OUTPUT"))
}

func (m Matrix) writeOutputs(stdout io.Writer, outputPath string) error {
	if _, err := fmt.Fprintln(stdout, m.JSON()); err != nil {
		return err
	}
	if outputPath == "" {
		return nil
	}
	f, err := os.OpenFile(outputPath, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("writing step outputs to GITHUB_OUTPUT: %w", err)
	}
	_, err = fmt.Fprintf(f, "matrix=%s\ncount=%d\n", m.JSON(), len(m.Include))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("writing step outputs to %s: %w", outputPath, err)
	}
	return nil
}

// Shared paths feed every image (or the tool that builds them), so a change there rebuilds all.
var sharedDirs = []string{"common/", "magefiles/", ".github/"}
var sharedFiles = []string{"go.mod", "go.sum", "mage.go"}

// Select returns the tags under root to build for ev: every tag on a scheduled or manual run,
// when the base revision is unknown, or when a shared file changed; otherwise the tags whose
// directory holds a changed file. A file renamed from one tag to another selects both.
func Select(ctx context.Context, root string, ev Event) (Matrix, error) {
	all, err := tags.Discover(root)
	if err != nil {
		return Matrix{}, err
	}
	every := func(reason string) Matrix {
		m := Matrix{Include: []Entry{}, Reason: reason}
		for _, t := range all {
			m.Include = append(m.Include, Entry{Tag: t.Name})
		}
		logrus.Info(reason)
		return m
	}

	// Runs that are not about a change rebuild everything.
	switch ev.Name {
	case "schedule", "workflow_dispatch":
		return every(fmt.Sprintf("%s run: selecting every tag", ev.Name)), nil
	}

	// Without a base there is nothing to compare with.
	if strings.Trim(ev.Base, "0") == "" {
		return every("no base revision (a new branch, or MATRIX_BASE unset): " +
			"selecting every tag"), nil
	}
	head := ev.Head
	if head == "" {
		head = "HEAD"
	}
	for _, rev := range []string{ev.Base, head} {
		if !matrixHasCommit(ctx, root, rev) {
			return every(fmt.Sprintf("revision %s is not in this clone (shallow clone? "+
				"fetch with depth 0): selecting every tag", short(rev))), nil
		}
	}

	// Pull requests compare with the merge base, as GitHub shows their diff; a push compares
	// the two tips, which also covers a force push.
	rng := ev.Base + ".." + head
	if ev.Name == "pull_request" || ev.Name == "pull_request_target" {
		rng = ev.Base + "..." + head
	}
	changed, err := matrixChangedFiles(ctx, root, rng)
	if err != nil {
		return Matrix{}, err
	}

	// Map each changed path to its tag, or to everything.
	known := map[string]bool{}
	for _, t := range all {
		known[t.Name] = true
	}
	picked := map[string]bool{}
	for _, p := range changed {
		if isShared(p) {
			return every(fmt.Sprintf("shared file %s changed since %s: selecting every tag",
				p, short(ev.Base))), nil
		}
		dir, _, found := strings.Cut(p, "/")
		name, isTag := strings.CutPrefix(dir, tags.DirPrefix)
		// A removed tag directory has nothing left to build.
		if found && isTag && known[name] {
			picked[name] = true
		}
	}
	m := Matrix{Include: []Entry{}}
	for _, t := range all {
		if picked[t.Name] {
			m.Include = append(m.Include, Entry{Tag: t.Name})
		}
	}
	if len(m.Include) == 0 {
		m.Reason = fmt.Sprintf("no tag changed in %s: nothing to build", rng)
	} else {
		m.Reason = fmt.Sprintf("changed in %s: %s", rng, strings.Join(m.Tags(), ", "))
	}
	logrus.Info(m.Reason)
	return m, nil
}

func isShared(path string) bool {
	for _, d := range sharedDirs {
		if strings.HasPrefix(path, d) {
			return true
		}
	}
	for _, f := range sharedFiles {
		if path == f {
			return true
		}
	}
	return false
}

// matrixHasCommit tells whether rev names a commit present in the clone at root.
func matrixHasCommit(ctx context.Context, root, rev string) bool {
	_, err := matrixGit(ctx, root, "rev-parse", "--verify", "--quiet", rev+"^{commit}")
	return err == nil
}

// matrixChangedFiles lists the paths changed in rng. Rename detection is off so that a move
// reports both the old and the new path.
func matrixChangedFiles(ctx context.Context, root, rng string) ([]string, error) {
	out, err := matrixGit(ctx, root, "diff", "--name-only", "--no-renames", "-z", rng, "--")
	if err != nil {
		return nil, fmt.Errorf("listing files changed in %s: %w", rng, err)
	}
	var paths []string
	for _, p := range bytes.Split(out, []byte{0}) {
		if len(p) > 0 {
			paths = append(paths, string(p))
		}
	}
	return paths, nil
}

func matrixGit(ctx context.Context, root string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "git", append([]string{"-C", root}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return nil, fmt.Errorf("git %s: %s", strings.Join(args, " "),
				strings.TrimSpace(stderr.String()))
		}
		return nil, fmt.Errorf("running git (is it installed?): %w", err)
	}
	return out, nil
}

func short(rev string) string {
	if len(rev) > 12 {
		return rev[:12]
	}
	return rev
}
