// Package changes decides what changed in a tag since its image was built: it defines the labels
// an image carries about its inputs, computes them, and compares them (through git where it can
// answer, through content digests where it cannot) with the tag's current files.
package changes

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/migdrp/runpod/magefiles/buildcontext"
)

// LabelPrefix starts every label the tool sets on images and containers.
const LabelPrefix = "io.github.migdrp.runpod."

// Labels an image is built with. None of them holds anything secret: a revision, a flag and
// digests of files that are in the repository anyway.
const (
	LabelRevision          = LabelPrefix + "revision"           // full git sha, "" outside git
	LabelDirty             = LabelPrefix + "dirty"              // "true" or "false"
	LabelDigestDockerfile  = LabelPrefix + "digest.dockerfile"  // Dockerfile
	LabelDigestSupervisord = LabelPrefix + "digest.supervisord" // supervisord.conf
	LabelDigestWorkspace   = LabelPrefix + "digest.workspace"   // workspace/ scripts
	LabelDigestOther       = LabelPrefix + "digest.other"       // every other file copied in
)

// LabelEnvFingerprint is set on a container: the fingerprint of the env file it was started
// with, computed by the env package so that no value of the file itself is ever stored.
const LabelEnvFingerprint = LabelPrefix + "env"

// CommonDir is the top-level directory of files every tag's build copies in.
const CommonDir = "common"

// Kind is one kind of input of a tag's image; each kind changes the plan in its own way.
type Kind int

// The kinds, from the one with the mildest consequence to the strongest.
const (
	Workspace   Kind = iota + 1 // workspace/: the scripts seeded into the volume
	Other                       // any other file copied into the image, common/ included
	Supervisord                 // supervisord.conf
	Dockerfile                  // Dockerfile
)

// Kinds lists every kind in a stable order, mildest first.
var Kinds = []Kind{Workspace, Other, Supervisord, Dockerfile}

// String names the kind as a user sees it in the tag directory.
func (k Kind) String() string {
	switch k {
	case Workspace:
		return "workspace/ scripts"
	case Other:
		return "other files copied into the image"
	case Supervisord:
		return "supervisord.conf"
	case Dockerfile:
		return "Dockerfile"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Label is the image label holding the digest of the kind.
func (k Kind) Label() string {
	switch k {
	case Workspace:
		return LabelDigestWorkspace
	case Other:
		return LabelDigestOther
	case Supervisord:
		return LabelDigestSupervisord
	case Dockerfile:
		return LabelDigestDockerfile
	}
	return ""
}

// Classify says which kind of input a path is. rel is relative to the tag directory, with
// either separator; paths leaving the tag directory (../common/x, the shared files) are Other.
func Classify(rel string) Kind {
	rel = filepath.ToSlash(filepath.Clean(rel))
	switch {
	case rel == "Dockerfile":
		return Dockerfile
	case rel == "supervisord.conf":
		return Supervisord
	case rel == "workspace" || strings.HasPrefix(rel, "workspace/"):
		return Workspace
	}
	return Other
}

// Inputs lists, as absolute paths in a stable order, the files that go into the image of the
// tag in tagDir: its build context, where .dockerignore applies as docker applies it, and the
// shared common/ folder of the repository when the Dockerfile copies from it.
func Inputs(tagDir string) ([]string, error) {
	rels, err := buildcontext.Files(tagDir)
	if err != nil {
		return nil, err
	}
	files := make([]string, 0, len(rels))
	for _, r := range rels {
		files = append(files, filepath.Join(tagDir, filepath.FromSlash(r)))
	}
	uses, err := CopiesFromCommon(tagDir)
	if err != nil || !uses {
		return files, err
	}
	common := filepath.Join(filepath.Dir(tagDir), CommonDir)
	err = filepath.WalkDir(common, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing the shared files under %s: %w", common, err)
	}
	sort.Strings(files)
	return files, nil
}

var copiesCommon = regexp.MustCompile(`(?i)^\s*(COPY|ADD)\b.*\scommon/`)

// CopiesFromCommon tells whether the Dockerfile in tagDir copies from the shared common/
// folder, which then belongs in its build context.
func CopiesFromCommon(tagDir string) (bool, error) {
	f, err := os.Open(filepath.Join(tagDir, "Dockerfile"))
	if err != nil {
		return false, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if copiesCommon.MatchString(sc.Text()) {
			return true, nil
		}
	}
	return false, sc.Err()
}

// Digests hashes the given build inputs per kind. files are absolute, or relative to the
// repository root (the parent of tagDir, which is the build context). Each digest covers, per
// file in name order, its path relative to the tag directory, whether it is executable (the
// only mode bit git keeps, so a checkout elsewhere with another umask hashes the same) and
// its content; a symbolic link contributes its target. Every kind gets a digest, the one of
// no files included, so that adding the first file of a kind is a change too.
func Digests(tagDir string, files []string) (map[Kind]string, error) {
	root := filepath.Dir(tagDir)
	type entry struct{ rel, abs string }
	perKind := map[Kind][]entry{}
	for _, f := range files {
		abs := f
		if !filepath.IsAbs(abs) {
			abs = filepath.Join(root, f)
		}
		rel, err := filepath.Rel(tagDir, abs)
		if err != nil {
			return nil, fmt.Errorf("build input %s is not under %s: %w", f, root, err)
		}
		k := Classify(rel)
		perKind[k] = append(perKind[k], entry{filepath.ToSlash(rel), abs})
	}

	digests := map[Kind]string{}
	for _, k := range Kinds {
		entries := perKind[k]
		sort.Slice(entries, func(i, j int) bool { return entries[i].rel < entries[j].rel })
		h := sha256.New()
		for _, e := range entries {
			if err := hashFile(h, e.rel, e.abs); err != nil {
				return nil, err
			}
		}
		digests[k] = "sha256:" + hex.EncodeToString(h.Sum(nil))
	}
	return digests, nil
}

// hashFile writes one file into h. Lengths precede path and content so that no two different
// sets of files can produce the same stream.
func hashFile(h io.Writer, rel, abs string) error {
	st, err := os.Lstat(abs)
	if err != nil {
		return fmt.Errorf("hashing build input %s: %w", rel, err)
	}
	mode := "100644"
	var content []byte
	switch {
	case st.Mode()&fs.ModeSymlink != 0:
		mode = "120000"
		target, err := os.Readlink(abs)
		if err != nil {
			return fmt.Errorf("hashing build input %s: %w", rel, err)
		}
		content = []byte(target)
	case st.Mode().IsRegular():
		if st.Mode()&0o111 != 0 {
			mode = "100755"
		}
		content, err = os.ReadFile(abs)
		if err != nil {
			return fmt.Errorf("hashing build input %s: %w", rel, err)
		}
	default:
		return fmt.Errorf("hashing build input %s: not a regular file or link", rel)
	}
	fmt.Fprintf(h, "%d:%s %s %d:", len(rel), rel, mode, len(content))
	_, err = h.Write(content)
	return err
}

// ImageLabels returns the labels to build the tag's image with: the git revision of root
// (empty when git cannot tell), whether the tag's files or common/ differ from that revision
// (uncommitted or untracked changes; "true" as well when there is no revision, since the image
// then matches no commit), and the digest of each kind of input.
func ImageLabels(ctx context.Context, root, tagDir string, files []string) (map[string]string,
	error) {
	digests, err := Digests(tagDir, files)
	if err != nil {
		return nil, err
	}
	labels := map[string]string{LabelRevision: "", LabelDirty: "true"}
	for k, d := range digests {
		labels[k.Label()] = d
	}

	g := newGit(root)
	rev, err := g.run(ctx, "rev-parse", "--verify", "HEAD^{commit}")
	if err != nil {
		return labels, nil
	}
	status, err := g.run(ctx, append([]string{"status", "--porcelain", "-z",
		"--untracked-files=all", "--"}, scope(root, tagDir, files)...)...)
	if err != nil {
		return labels, nil
	}
	labels[LabelRevision] = strings.TrimSpace(rev)
	labels[LabelDirty] = fmt.Sprint(status != "")
	return labels, nil
}
