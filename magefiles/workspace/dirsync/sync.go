// Package dirsync brings a workspace directory in step with a template directory, keeping
// what the user changed and looking at nothing but the paths the template or the manifest names
// (the rest of a workspace can be hundreds of GB on a network disk). It imports nothing from
// Docker: it is what the static runpod-workspace binary in every image runs, and that binary
// should change only when these rules do.
//
// A manifest at the workspace root records the checksum and mode of every file the template
// put there. With it, each file is classified: untouched by the user and changed in the
// template is replaced; changed by the user is kept; changed by both is kept and the template's
// version is written beside it as <name>.template-new (a conflict). Files the user deleted are
// put back; emptying a file is how to keep it out of the way. Executable bits follow the
// template on every file the sync owns; a file the user changed is not touched, mode included.
package dirsync

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// ConflictSuffix names the copy of the template's version written beside a file that both the
// user and the template changed. An existing file of that name is overwritten.
const ConflictSuffix = ".template-new"

// Summary lists, by path relative to the workspace, what a sync did.
type Summary struct {
	// Updated files were replaced by the template's version, or had their executable bits set
	// to the template's.
	Updated []string `json:"updated"`
	// Added files were new in the template, or deleted from the workspace by the user.
	Added []string `json:"added"`
	// Removed files left the template and were untouched, so they left the workspace.
	Removed []string `json:"removed"`
	// Kept files were changed by the user and left as they are.
	Kept []string `json:"kept"`
	// Conflicts were changed by both; the template's version is in <name>.template-new.
	Conflicts []string `json:"conflicts"`
	// KeptRemoved are the files of Kept that left the template: they are the user's now and
	// are no longer synced.
	KeptRemoved []string `json:"kept_removed"`
}

// String is the one-line summary: "3 updated, 1 added, 0 removed, 2 kept, 1 conflict".
func (s Summary) String() string {
	conflicts := "conflicts"
	if len(s.Conflicts) == 1 {
		conflicts = "conflict"
	}
	return fmt.Sprintf("%d updated, %d added, %d removed, %d kept, %d %s", len(s.Updated),
		len(s.Added), len(s.Removed), len(s.Kept), len(s.Conflicts), conflicts)
}

// Changed tells whether the sync wrote or removed any file of the workspace.
func (s Summary) Changed() bool {
	return len(s.Updated)+len(s.Added)+len(s.Removed)+len(s.Conflicts) > 0
}

// Details has one line per file a user should look at: conflicts and kept files that left the
// template.
func (s Summary) Details() []string {
	var lines []string
	for _, p := range s.Conflicts {
		lines = append(lines, fmt.Sprintf("conflict: %s: your version kept, the template's is in %s",
			p, p+ConflictSuffix))
	}
	for _, p := range s.KeptRemoved {
		lines = append(lines, fmt.Sprintf(
			"kept: %s: removed from the template but changed by you; no longer synced", p))
	}
	return lines
}

// templateFile is one regular file of the template.
type templateFile struct {
	src string // path on disk
	entry
}

// Sync brings workspaceDir in step with templateDir and records the result in the manifest.
// It only looks at paths the template or the manifest names.
func Sync(templateDir, workspaceDir string) (Summary, error) {
	tmpl, err := readTemplate(templateDir)
	if err != nil {
		return Summary{}, err
	}
	if err := os.MkdirAll(workspaceDir, 0o755); err != nil {
		return Summary{}, fmt.Errorf("creating workspace: %w", err)
	}
	root, err := os.OpenRoot(workspaceDir)
	if err != nil {
		return Summary{}, fmt.Errorf("opening workspace: %w", err)
	}
	defer root.Close()
	old, oldRaw := readManifest(root)

	// Classify and act on every path either side names, in a stable order.
	s := syncer{root: root, dirs: templateDirs(tmpl)}
	next := manifest{Version: manifestVersion, Files: map[string]entry{}}
	for _, p := range unionPaths(tmpl, old.Files) {
		m, inManifest := old.Files[p]
		if t, ok := tmpl[p]; ok {
			if err := s.syncFile(p, t, m, inManifest); err != nil {
				return s.sum, fmt.Errorf("syncing %s: %w", p, err)
			}
			next.Files[p] = t.entry
			continue
		}
		if err := s.removeFile(p, m); err != nil {
			return s.sum, fmt.Errorf("removing %s: %w", p, err)
		}
	}

	// The manifest goes last, so an interrupted sync is redone from the old one.
	if err := writeManifest(root, next, oldRaw); err != nil {
		return s.sum, err
	}
	return s.sum, nil
}

type syncer struct {
	root *os.Root
	dirs map[string]bool // directories the template has files in
	sum  Summary
}

// current is what the workspace holds at a path.
type current struct {
	exists  bool
	regular bool
	hash    string
	perm    fs.FileMode
}

func (s *syncer) syncFile(p string, t templateFile, m entry, inManifest bool) error {
	w, err := s.stat(p)
	if err != nil {
		return err
	}
	switch {
	case !w.exists:
		s.sum.Added = append(s.sum.Added, p)
		return s.write(p, t)
	case w.regular && w.hash == t.Hash:
		// Same content (also a file adopted from a workspace without manifest): only the
		// executable bits may need to follow the template.
		want := w.perm&^0o111 | t.perm()&0o111
		if want == w.perm {
			return nil
		}
		s.sum.Updated = append(s.sum.Updated, p)
		return s.root.Chmod(p, want)
	case w.regular && inManifest && w.hash == m.Hash:
		s.sum.Updated = append(s.sum.Updated, p)
		return s.write(p, t)
	case inManifest && t.Hash == m.Hash:
		s.sum.Kept = append(s.sum.Kept, p)
		return nil
	default:
		// Changed by both, or a user's file where the template had none before.
		s.sum.Conflicts = append(s.sum.Conflicts, p)
		return s.write(p+ConflictSuffix, t)
	}
}

func (s *syncer) removeFile(p string, m entry) error {
	w, err := s.stat(p)
	if err != nil || !w.exists {
		return err
	}
	if !w.regular || w.hash != m.Hash {
		s.sum.Kept = append(s.sum.Kept, p)
		s.sum.KeptRemoved = append(s.sum.KeptRemoved, p)
		return nil
	}
	if err := s.root.Remove(p); err != nil {
		return err
	}
	s.sum.Removed = append(s.sum.Removed, p)

	// Drop the directories this left empty; a directory with anything in it stays.
	for dir := path.Dir(p); dir != "." && !s.dirs[dir]; dir = path.Dir(dir) {
		if s.root.Remove(dir) != nil {
			break
		}
	}
	return nil
}

// stat looks at one path of the workspace without following a final symlink: a symlink or a
// directory where the template has a file counts as the user's change.
func (s *syncer) stat(p string) (current, error) {
	info, err := s.root.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return current{}, nil
	}
	if err != nil {
		return current{}, err
	}
	if !info.Mode().IsRegular() {
		return current{exists: true}, nil
	}
	f, err := s.root.Open(p)
	if err != nil {
		return current{}, err
	}
	defer f.Close()
	sum, err := hashReader(f)
	if err != nil {
		return current{}, fmt.Errorf("reading: %w", err)
	}
	return current{exists: true, regular: true, hash: sum, perm: info.Mode().Perm()}, nil
}

// write puts the template's file at p atomically: a temporary file in the same directory,
// renamed over p once complete.
func (s *syncer) write(p string, t templateFile) error {
	src, err := os.Open(t.src)
	if err != nil {
		return fmt.Errorf("reading template: %w", err)
	}
	defer src.Close()
	return writeAtomic(s.root, p, src, t.perm())
}

func writeAtomic(root *os.Root, p string, content io.Reader, perm fs.FileMode) error {
	dir, base := path.Split(p)
	if dir != "" {
		if err := root.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	var f *os.File
	var tmp string
	for i := 0; ; i++ {
		tmp = fmt.Sprintf("%s.%s.sync-%d-%d", dir, base, os.Getpid(), i)
		var err error
		f, err = root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
		if err == nil {
			break
		}
		if !errors.Is(err, fs.ErrExist) || i > 100 {
			return err
		}
	}
	fail := func(err error) error {
		_ = f.Close()
		_ = root.Remove(tmp)
		return err
	}
	if _, err := io.Copy(f, content); err != nil {
		return fail(err)
	}
	// Chmod explicitly: the umask applies to OpenFile's mode.
	if err := f.Chmod(perm); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		_ = root.Remove(tmp)
		return err
	}
	if err := root.Rename(tmp, p); err != nil {
		_ = root.Remove(tmp)
		return err
	}
	return nil
}

// readTemplate hashes every regular file under dir, following symlinks to files; the template
// is small, so walking it is cheap.
func readTemplate(dir string) (map[string]templateFile, error) {
	files := map[string]templateFile{}
	err := filepath.WalkDir(dir, func(src string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, src)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if d.IsDir() || rel == ManifestName {
			return nil
		}
		info, err := os.Stat(src)
		if err != nil {
			return err
		}
		if !info.Mode().IsRegular() {
			return nil
		}
		f, err := os.Open(src)
		if err != nil {
			return err
		}
		defer f.Close()
		sum, err := hashReader(f)
		if err != nil {
			return err
		}
		files[rel] = templateFile{src: src, entry: entry{Hash: sum, Mode: formatMode(info.Mode())}}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading template: %w", err)
	}
	return files, nil
}

// templateDirs lists every directory that holds a template file, so removals never prune it.
func templateDirs(tmpl map[string]templateFile) map[string]bool {
	dirs := map[string]bool{}
	for p := range tmpl {
		for dir := path.Dir(p); dir != "."; dir = path.Dir(dir) {
			dirs[dir] = true
		}
	}
	return dirs
}

func unionPaths(tmpl map[string]templateFile, old map[string]entry) []string {
	seen := map[string]bool{}
	var paths []string
	for p := range tmpl {
		seen[p] = true
		paths = append(paths, p)
	}
	for p := range old {
		if !seen[p] {
			paths = append(paths, p)
		}
	}
	sort.Strings(paths)
	return paths
}

func hashReader(r io.Reader) (string, error) {
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// validPath rejects manifest paths that would reach outside the workspace or into the sync's
// own files; the manifest lives in the volume, where anyone can edit it.
func validPath(p string) bool {
	return filepath.IsLocal(p) && p == path.Clean(p) && p != ManifestName &&
		!strings.Contains(p, "\\")
}
