package changes

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

// Method says how a decision about changes was reached.
type Method int

// The methods.
const (
	NoImage   Method = iota + 1 // there is no image to compare with
	ByGit                       // git named the files; digests confirmed the kinds
	ByDigests                   // git could not answer; the digests in the image decided
)

// String names the method for logs.
func (m Method) String() string {
	switch m {
	case NoImage:
		return "no image"
	case ByGit:
		return "git"
	case ByDigests:
		return "digests"
	}
	return fmt.Sprintf("Method(%d)", int(m))
}

// Changes is what changed in a tag since its image was built.
type Changes struct {
	// Kinds holds each changed kind with the changed files, relative to the repository root.
	// A kind decided by digests alone has no files: digests say that, not where.
	Kinds map[Kind][]string
	// Unknown is set when neither git nor the image's labels can tell (an image built
	// without this tool); UnknownKinds names the kinds concerned.
	Unknown      bool
	UnknownKinds []Kind
	// SameContent lists files git names as changed although their kind's content equals
	// the image's (edited then reverted, or not copied into the image): not a change.
	SameContent []string
	// Env is set when the env file's fingerprint differs from the container's.
	Env bool
	// Revision is the full git revision the image was built from ("" unknown); Dirty says
	// the image was built with uncommitted changes on top of it.
	Revision string
	Dirty    bool
	Method   Method
	// Why is one sentence saying how the decision was made, for an info line.
	Why string
}

// Changed says whether kind k changed.
func (c Changes) Changed(k Kind) bool {
	_, ok := c.Kinds[k]
	return ok
}

// Nothing says that nothing at all changed: image current, env file the same.
func (c Changes) Nothing() bool {
	return c.Method != NoImage && len(c.Kinds) == 0 && !c.Unknown && !c.Env
}

// ShortRevision is the revision as git abbreviates it, or "an unknown revision".
func (c Changes) ShortRevision() string {
	switch {
	case c.Revision == "":
		return "an unknown revision"
	case len(c.Revision) > 7:
		return c.Revision[:7]
	}
	return c.Revision
}

// Describe says in a few words how kind k changed, naming its files and the image's revision:
// "Dockerfile changed since 1a2b3c4 (runpod-x/Dockerfile)".
func (c Changes) Describe(k Kind) string {
	files, ok := c.Kinds[k]
	if !ok {
		return k.String() + " unchanged"
	}
	since := "since " + c.ShortRevision()
	if c.Dirty {
		since += " (built with uncommitted changes)"
	}
	if len(files) == 0 {
		switch {
		case c.Revision == "":
			return fmt.Sprintf("%s differs from what the image was built from (by digest)", k)
		case c.Method == ByGit:
			return fmt.Sprintf("%s changed %s (by digest; git names no file)", k, since)
		}
		return fmt.Sprintf("%s changed %s (by digest)", k, since)
	}
	const most = 5
	shown := files
	more := ""
	if len(shown) > most {
		shown = shown[:most]
		more = fmt.Sprintf(" and %d more", len(files)-most)
	}
	return fmt.Sprintf("%s changed %s (%s%s)", k, since, strings.Join(shown, ", "), more)
}

// Detect compares the tag's current build inputs (files, as for Digests) with the labels of
// its existing image (nil when there is no image), and the env file's fingerprint with the
// one the container was started with ("" when there is none).
//
// Git names the changed files: those that differ between the image's revision and the work
// tree (so commits since the image plus uncommitted changes), and untracked files git does not
// ignore, within the tag directory, common/ and any other listed file; a rename counts for
// both its paths. The digests in the image have the last word on each kind, because the
// content is what the image is made of: a file edited and then reverted is no change, and a
// kind whose digest differs changed even when git names no file (an image built from
// uncommitted changes). Where git cannot answer (no repository, no git, a shallow clone or
// another machine's history lacking the revision, an image without a revision label) the
// digests decide alone, and Why says so. Errors come only from unreadable build inputs and
// a cancelled ctx.
func Detect(ctx context.Context, root, tagDir string, files []string, image map[string]string,
	envFingerprint, containerEnvFingerprint string) (Changes, error) {
	ch := Changes{Kinds: map[Kind][]string{}, Env: envFingerprint != containerEnvFingerprint}
	if image == nil {
		ch.Method = NoImage
		ch.Why = "there is no image yet"
		return ch, nil
	}
	ch.Revision = image[LabelRevision]
	ch.Dirty = image[LabelDirty] == "true"

	// What the tag is made of now.
	current, err := Digests(tagDir, files)
	if err != nil {
		return Changes{}, err
	}

	// Ask git for the changed files; fall back to digests with the reason it could not.
	named, gitProblem := gitChanges(ctx, root, tagDir, files, ch.Revision)
	if err := ctx.Err(); err != nil {
		return Changes{}, fmt.Errorf("deciding what changed: %w", err)
	}
	if !isRevision(ch.Revision) {
		ch.Revision = ""
	}
	if gitProblem == "" {
		ch.Method = ByGit
	} else {
		ch.Method = ByDigests
	}

	// Digests decide each kind where the image recorded them; git where it did not.
	for _, k := range Kinds {
		recorded := image[k.Label()]
		switch {
		case recorded != "" && recorded != current[k]:
			ch.Kinds[k] = named[k]
		case recorded != "":
			ch.SameContent = append(ch.SameContent, named[k]...)
		case gitProblem == "":
			if len(named[k]) > 0 {
				ch.Kinds[k] = named[k]
			}
		default:
			ch.UnknownKinds = append(ch.UnknownKinds, k)
		}
	}
	ch.Unknown = len(ch.UnknownKinds) > 0
	sort.Strings(ch.SameContent)
	ch.Why = why(ch, gitProblem, len(ch.UnknownKinds) == len(Kinds))
	return ch, nil
}

func why(ch Changes, gitProblem string, noDigests bool) string {
	switch {
	case gitProblem == "":
		s := "git compared the tag with revision " + ch.ShortRevision() +
			" the image was built from, including uncommitted and untracked files"
		if ch.Dirty {
			s += "; the image was built with uncommitted changes, so its digests confirm each kind"
		}
		return s
	case noDigests && ch.Revision == "":
		return "the image records neither a git revision nor digests (built without this " +
			"tool), so what changed cannot be told"
	case noDigests:
		return gitProblem + ", and the image records no digests, so what changed cannot be told"
	case ch.Unknown:
		return gitProblem + ", so the digests recorded in the image decide, where it has them"
	}
	return gitProblem + ", so the digests recorded in the image decide"
}

// gitChanges asks git which files in the tag's scope changed since revision, per kind, as
// paths relative to root. When git cannot answer it returns why, as the start of a sentence.
func gitChanges(ctx context.Context, root, tagDir string, files []string,
	revision string) (map[Kind][]string, string) {
	g := newGit(root)

	// Reasons git cannot answer, most basic first.
	if revision == "" {
		return nil, "the image records no git revision"
	}
	if !isRevision(revision) {
		return nil, fmt.Sprintf("the image's revision label %q is not a git revision", revision)
	}
	if _, err := exec.LookPath("git"); err != nil {
		return nil, "git is not installed"
	}
	if _, err := g.run(ctx, "rev-parse", "--git-dir"); err != nil {
		return nil, fmt.Sprintf("%s is not a git repository", root)
	}
	if _, err := g.run(ctx, "cat-file", "-e", revision+"^{commit}"); err != nil {
		short := revision
		if len(short) > 7 {
			short = short[:7]
		}
		if out, _ := g.run(ctx, "rev-parse", "--is-shallow-repository"); strings.TrimSpace(
			out) == "true" {
			return nil, fmt.Sprintf("this shallow clone does not contain revision %s the "+
				"image was built from", short)
		}
		return nil, fmt.Sprintf("revision %s the image was built from is not in this "+
			"repository (built on another machine?)", short)
	}

	// Tracked files: the image's revision against the work tree, renames as both paths.
	// --relative keeps paths relative to root even when root is below the repository's top.
	spec := scope(root, tagDir, files)
	diff, err := g.run(ctx, append([]string{"diff", "--name-status", "-z", "-M",
		"--no-ext-diff", "--relative", revision, "--"}, spec...)...)
	if err != nil {
		return nil, "git could not compare with revision the image was built from (" +
			firstLine(err.Error()) + ")"
	}
	paths := parseNameStatus(diff)

	// Untracked files git does not ignore.
	untracked, err := g.run(ctx, append([]string{"ls-files", "--others", "--exclude-standard",
		"-z", "--"}, spec...)...)
	if err != nil {
		return nil, "git could not list untracked files (" + firstLine(err.Error()) + ")"
	}
	paths = append(paths, splitZ(untracked)...)

	// Group by kind, each path once.
	named := map[Kind][]string{}
	seen := map[string]bool{}
	for _, p := range paths {
		if seen[p] {
			continue
		}
		seen[p] = true
		rel, err := filepath.Rel(tagDir, filepath.Join(root, filepath.FromSlash(p)))
		if err != nil {
			continue
		}
		k := Classify(rel)
		named[k] = append(named[k], p)
	}
	for k := range named {
		sort.Strings(named[k])
	}
	return named, ""
}

// scope lists the pathspecs, relative to root, that hold a tag's build inputs: its directory,
// common/, and any listed file outside both.
func scope(root, tagDir string, files []string) []string {
	tagRel, err := filepath.Rel(root, tagDir)
	if err != nil {
		tagRel = filepath.Base(tagDir)
	}
	tagRel = filepath.ToSlash(tagRel)
	spec := []string{tagRel, CommonDir}
	for _, f := range files {
		rel := f
		if filepath.IsAbs(f) {
			if rel, err = filepath.Rel(root, f); err != nil {
				continue
			}
		}
		rel = filepath.ToSlash(rel)
		if strings.HasPrefix(rel, tagRel+"/") || strings.HasPrefix(rel, CommonDir+"/") ||
			strings.HasPrefix(rel, "../") {
			continue
		}
		spec = append(spec, rel)
	}
	// Literal pathspecs: a file name with a wildcard character names only itself.
	for i, s := range spec {
		spec[i] = ":(literal)" + s
	}
	return spec
}

// parseNameStatus reads `git diff --name-status -z`: a status, then one path, or two for a
// rename or copy (R100, C75).
func parseNameStatus(out string) []string {
	fields := splitZ(out)
	var paths []string
	for i := 0; i < len(fields); i++ {
		status := fields[i]
		n := 1
		if strings.HasPrefix(status, "R") || strings.HasPrefix(status, "C") {
			n = 2
		}
		for j := 0; j < n && i+1 < len(fields); j++ {
			i++
			paths = append(paths, fields[i])
		}
	}
	return paths
}

// isRevision accepts a full object name, SHA-1 or SHA-256, so that a label can never be read
// by git as an option or a range.
func isRevision(s string) bool {
	if len(s) != 40 && len(s) != 64 {
		return false
	}
	for _, r := range s {
		if !strings.ContainsRune("0123456789abcdef", r) {
			return false
		}
	}
	return true
}

func splitZ(s string) []string {
	var out []string
	for _, f := range strings.Split(s, "\x00") {
		if f != "" {
			out = append(out, f)
		}
	}
	return out
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

// git runs the git CLI in one directory, with the environment cleaned of variables that would
// point it at another repository (set when the tool runs from a git hook) and messages in
// English so that they read the same in every log.
type git struct {
	dir string
	env []string
}

func newGit(dir string) git {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch name {
		case "GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY",
			"GIT_COMMON_DIR", "GIT_CEILING_DIRECTORIES", "LC_ALL", "LANG":
			continue
		}
		env = append(env, kv)
	}
	return git{dir: dir, env: append(env, "LC_ALL=C", "GIT_OPTIONAL_LOCKS=0")}
}

// run returns git's stdout, or an error holding its stderr.
func (g git) run(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", append([]string{"-C", g.dir}, args...)...)
	cmd.Env = g.env
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) && stderr.Len() > 0 {
			return "", fmt.Errorf("git %s: %s", args[0], strings.TrimSpace(stderr.String()))
		}
		return "", fmt.Errorf("git %s: %w", args[0], err)
	}
	return string(out), nil
}
