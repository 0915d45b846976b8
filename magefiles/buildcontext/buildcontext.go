// Package buildcontext packs the build context of one image tag: the files of the tag's
// directory that .dockerignore lets through, plus shared files from elsewhere in the repository
// placed under a path of the context, as a reproducible tar stream for the engine.
package buildcontext

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
	"github.com/sirupsen/logrus"
)

const (
	// Dockerfile is the file the engine builds from; it is sent even when .dockerignore names
	// it, as docker does.
	Dockerfile = "Dockerfile"
	// IgnoreFile lists the patterns of files kept out of the context.
	IgnoreFile = ".dockerignore"
)

// neverSent are names that no context holds, whatever .dockerignore says: repository metadata,
// env files with their secrets, volume backups and the tool's own state. An entry is left out
// when any component of its path has one of these names, so their whole subtree stays out.
var neverSent = map[string]bool{".git": true, "envs": true, "backups": true, ".runpod": true}

// secretSuffix marks env files (runpod-comfyui.env, .env), which hold passwords and tokens;
// like the names above, it keeps out a directory of that name with all it holds.
const secretSuffix = ".env"

// Overlay places a file or directory from outside the tag directory into the context, so that
// what several images share has a single source in the repository.
type Overlay struct {
	// Source is a directory or a file on the host.
	Source string
	// Target is the slash-separated path it takes inside the context, e.g. "common" or
	// "common/bin/runpod-workspace".
	Target string
}

// Stats tells how much a context weighed.
type Stats struct {
	// Files counts regular files and symlinks sent (directories not included).
	Files int
	// Bytes counts the tar bytes written, headers and padding included.
	Bytes int64
}

// entry is one item of the context: rel is its slash path inside the context, abs where it is
// read from, info its Lstat.
type entry struct {
	rel  string
	abs  string
	info fs.FileInfo
}

// Files lists the regular files and symlinks of tagDir that go into its context, as sorted
// slash-separated relative paths.
func Files(tagDir string) ([]string, error) {
	entries, err := tagEntries(tagDir)
	if err != nil {
		return nil, err
	}
	var files []string
	for _, e := range entries {
		if !e.info.IsDir() {
			files = append(files, e.rel)
		}
	}
	sort.Strings(files)
	return files, nil
}

// Write writes the context of tagDir with overlays to w as an uncompressed tar: first the tag's
// files, then each overlay under its Target, which replaces whatever the tag directory has at
// that path. Entries come in a fixed order (names sorted within each directory), owned by root
// with no user or group names, with the mode and modification time they have on disk, so the
// same tree gives the same bytes and the same build cache keys.
func Write(w io.Writer, tagDir string, overlays []Overlay) (Stats, error) {
	cw := &countingWriter{w: w}
	var st Stats

	// List everything first: a bad overlay or an unreadable directory fails before any byte.
	if err := checkOverlays(overlays); err != nil {
		return st, err
	}
	entries, err := tagEntries(tagDir)
	if err != nil {
		return st, err
	}
	for _, o := range overlays {
		more, err := overlayEntries(o)
		if err != nil {
			return st, err
		}
		entries = dropReplaced(entries, o)
		entries = append(entries, withParents(entries, more)...)
	}

	// Stream the entries.
	tw := tar.NewWriter(cw)
	buf := make([]byte, 64<<10)
	for _, e := range entries {
		if err := writeEntry(tw, e, buf); err != nil {
			st.Bytes = cw.n
			return st, err
		}
		if !e.info.IsDir() {
			st.Files++
		}
	}
	if err := tw.Close(); err != nil {
		st.Bytes = cw.n
		return st, fmt.Errorf("finishing build context of %s: %w", tagDir, err)
	}
	st.Bytes = cw.n
	return st, nil
}

// Reader streams the context of Write through a pipe, so a large context is never held in
// memory. A failure while packing surfaces as the error of Read. The returned function gives
// the final Stats once Read has returned io.EOF (before that, the zero value). Close the reader
// to stop packing early.
func Reader(tagDir string, overlays []Overlay) (io.ReadCloser, func() Stats) {
	pr, pw := io.Pipe()
	var (
		mu    sync.Mutex
		final Stats
	)
	go func() {
		st, err := Write(pw, tagDir, overlays)
		// Record the figures before closing, so a reader that saw EOF reads them complete.
		mu.Lock()
		final = st
		mu.Unlock()
		_ = pw.CloseWithError(err)
	}()
	return pr, func() Stats {
		mu.Lock()
		defer mu.Unlock()
		return final
	}
}

// tagEntries walks tagDir the way docker's client does: a path matched by .dockerignore is left
// out; a matched directory is still entered (without its own entry) only when an exception
// pattern starts with its path, so "!dir/keep" can bring back a file of an ignored directory.
func tagEntries(tagDir string) ([]entry, error) {
	root, err := filepath.Abs(tagDir)
	if err != nil {
		return nil, fmt.Errorf("build context %s: %w", tagDir, err)
	}
	if fi, err := os.Stat(root); err != nil {
		return nil, fmt.Errorf("build context: %w", err)
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("build context %s is not a directory", tagDir)
	}
	pm, err := readIgnoreFile(root)
	if err != nil {
		return nil, err
	}
	w := &walker{root: root, pm: pm}
	if err := w.walk("", patternmatcher.MatchInfo{}); err != nil {
		return nil, err
	}
	return w.entries, nil
}

// readIgnoreFile parses root/.dockerignore; a missing file ignores nothing.
func readIgnoreFile(root string) (*patternmatcher.PatternMatcher, error) {
	name := filepath.Join(root, IgnoreFile)
	f, err := os.Open(name)
	if errors.Is(err, fs.ErrNotExist) {
		return patternmatcher.New(nil)
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	defer f.Close()
	patterns, err := ignorefile.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return pm, nil
}

type walker struct {
	root    string
	pm      *patternmatcher.PatternMatcher
	entries []entry
}

// walk visits the directory rel (slash path, "" for the root) with the match results of its
// own path, so each child is matched against its parents' results like docker does.
func (w *walker) walk(rel string, parent patternmatcher.MatchInfo) error {
	dir := filepath.Join(w.root, filepath.FromSlash(rel))
	children, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("reading %s: %w", dir, err)
	}
	for _, c := range children {
		childRel := path.Join(rel, c.Name())
		if neverSentPath(childRel) {
			continue
		}
		ignored, info, err := w.pm.MatchesUsingParentResults(childRel, parent)
		if err != nil {
			return fmt.Errorf("matching %s against %s: %w", childRel, IgnoreFile, err)
		}
		if rel == "" && (c.Name() == Dockerfile || c.Name() == IgnoreFile) {
			ignored = false
		}
		if ignored && !(c.IsDir() && w.reincludesUnder(childRel)) {
			continue
		}
		abs := filepath.Join(dir, c.Name())
		fi, err := os.Lstat(abs)
		if err != nil {
			return fmt.Errorf("reading %s: %w", abs, err)
		}
		if !sendable(fi) {
			logrus.Debugf("build context: skipping %s (%s)", abs, fi.Mode().Type())
			continue
		}
		if !ignored {
			w.entries = append(w.entries, entry{rel: childRel, abs: abs, info: fi})
		}
		if fi.IsDir() {
			if err := w.walk(childRel, info); err != nil {
				return err
			}
		}
	}
	return nil
}

// reincludesUnder tells whether an exception pattern starts with dir, the test docker's client
// uses to decide whether an ignored directory must still be entered.
func (w *walker) reincludesUnder(dir string) bool {
	if !w.pm.Exclusions() {
		return false
	}
	for _, p := range w.pm.Patterns() {
		if p.Exclusion() && strings.HasPrefix(p.String()+"/", dir+"/") {
			return true
		}
	}
	return false
}

// neverSentPath tells whether rel (a slash path) is kept out of every context.
func neverSentPath(rel string) bool {
	for _, part := range strings.Split(rel, "/") {
		if neverSent[part] || strings.HasSuffix(part, secretSuffix) {
			return true
		}
	}
	return false
}

// sendable tells whether a file type belongs in a context: sockets, pipes and devices do not.
func sendable(fi fs.FileInfo) bool {
	m := fi.Mode()
	return m.IsRegular() || m.IsDir() || m&fs.ModeSymlink != 0
}

// checkOverlays refuses targets that are not plain relative paths, that a context never holds,
// or that two overlays share. One overlay may lie inside another: the later one wins there.
func checkOverlays(overlays []Overlay) error {
	for i, o := range overlays {
		t := o.Target
		if t == "" || path.IsAbs(t) || path.Clean(t) != t || t == "." || t == ".." ||
			strings.HasPrefix(t, "../") || strings.Contains(t, `\`) {
			return fmt.Errorf("overlay %s: target %q must be a clean relative slash path "+
				"inside the context", o.Source, t)
		}
		if neverSentPath(t) {
			return fmt.Errorf("overlay %s: target %q is a name no build context may hold",
				o.Source, t)
		}
		for _, p := range overlays[:i] {
			if t == p.Target {
				return fmt.Errorf("overlays %s and %s both target %q", p.Source, o.Source, t)
			}
		}
	}
	return nil
}

// under tells whether the slash path p is dir or lies below it.
func under(p, dir string) bool {
	return p == dir || strings.HasPrefix(p, dir+"/")
}

// dropReplaced removes the entries that overlay o replaces: those at or below its target, and
// any non-directory standing where the target needs a parent directory (a symlink such as
// common -> ../common, which docker alone would send as a dangling link).
func dropReplaced(entries []entry, o Overlay) []entry {
	kept := entries[:0:0]
	for _, e := range entries {
		if under(e.rel, o.Target) || (!e.info.IsDir() && under(o.Target, e.rel)) {
			continue
		}
		kept = append(kept, e)
	}
	return kept
}

// overlayEntries lists an overlay's source under its target, leaving out the names no context
// holds. The source itself is followed if it is a symlink; links inside it are kept as links.
func overlayEntries(o Overlay) ([]entry, error) {
	fi, err := os.Stat(o.Source)
	if err != nil {
		return nil, fmt.Errorf("overlay for %s: %w", o.Target, err)
	}
	if !fi.IsDir() {
		if !fi.Mode().IsRegular() {
			return nil, fmt.Errorf("overlay %s is neither a directory nor a regular file",
				o.Source)
		}
		return []entry{{rel: o.Target, abs: o.Source, info: fi}}, nil
	}
	out := []entry{{rel: o.Target, abs: o.Source, info: fi}}
	err = walkOverlay(o.Source, "", func(rel, abs string, fi fs.FileInfo) {
		out = append(out, entry{rel: path.Join(o.Target, rel), abs: abs, info: fi})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func walkOverlay(root, rel string, add func(rel, abs string, fi fs.FileInfo)) error {
	dir := filepath.Join(root, filepath.FromSlash(rel))
	children, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("reading overlay %s: %w", dir, err)
	}
	for _, c := range children {
		childRel := path.Join(rel, c.Name())
		if neverSentPath(childRel) {
			continue
		}
		abs := filepath.Join(dir, c.Name())
		fi, err := os.Lstat(abs)
		if err != nil {
			return fmt.Errorf("reading overlay %s: %w", abs, err)
		}
		if !sendable(fi) {
			logrus.Debugf("build context: skipping %s (%s)", abs, fi.Mode().Type())
			continue
		}
		add(childRel, abs, fi)
		if fi.IsDir() {
			if err := walkOverlay(root, childRel, add); err != nil {
				return err
			}
		}
	}
	return nil
}

// withParents prefixes more with directory entries for the parents of its first entry that
// have no entry yet, so the target's parents get a fixed mode instead of whatever the
// extracting side picks.
func withParents(have []entry, more []entry) []entry {
	if len(more) == 0 {
		return more
	}
	known := map[string]bool{}
	for _, e := range have {
		if e.info.IsDir() {
			known[e.rel] = true
		}
	}
	var parents []entry
	for d := path.Dir(more[0].rel); d != "." && !known[d]; d = path.Dir(d) {
		parents = append([]entry{{rel: d, info: syntheticDir(path.Base(d))}}, parents...)
	}
	return append(parents, more...)
}

// writeEntry writes one header and, for a regular file, its content through buf, one buffer
// for the whole context.
func writeEntry(tw *tar.Writer, e entry, buf []byte) error {
	link := ""
	if e.info.Mode()&fs.ModeSymlink != 0 {
		var err error
		if link, err = os.Readlink(e.abs); err != nil {
			return fmt.Errorf("reading link %s: %w", e.abs, err)
		}
	}
	hdr, err := tar.FileInfoHeader(e.info, link)
	if err != nil {
		return fmt.Errorf("build context entry %s: %w", e.abs, err)
	}
	hdr.Name = e.rel
	if e.info.IsDir() {
		hdr.Name += "/"
	}
	// Ownership and access times differ between machines and checkouts; the engine's cache
	// keys on content and mode, so only those and the modification time are kept.
	hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = 0, 0, "", ""
	hdr.ModTime = e.info.ModTime().Truncate(time.Second)
	hdr.AccessTime, hdr.ChangeTime = time.Time{}, time.Time{}
	hdr.Format = tar.FormatPAX
	hdr.PAXRecords = nil
	if err := tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("build context entry %s: %w", e.rel, err)
	}
	if !e.info.Mode().IsRegular() {
		return nil
	}
	f, err := os.Open(e.abs)
	if err != nil {
		return fmt.Errorf("build context: %w", err)
	}
	defer f.Close()
	// Hide the file's WriteTo so the copy goes through buf instead of a new buffer per file.
	n, err := io.CopyBuffer(tw, struct{ io.Reader }{f}, buf)
	if err != nil {
		return fmt.Errorf("build context: copying %s: %w", e.abs, err)
	}
	if n != hdr.Size {
		return fmt.Errorf("build context: %s changed size while being packed", e.abs)
	}
	return nil
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// syntheticDir describes a directory that exists only in the context: mode 0755, time zero of
// the Unix epoch, so it never varies between runs.
func syntheticDir(name string) fs.FileInfo { return dirInfo(name) }

type dirInfo string

func (d dirInfo) Name() string       { return string(d) }
func (d dirInfo) Size() int64        { return 0 }
func (d dirInfo) Mode() fs.FileMode  { return fs.ModeDir | 0o755 }
func (d dirInfo) ModTime() time.Time { return time.Unix(0, 0) }
func (d dirInfo) IsDir() bool        { return true }
func (d dirInfo) Sys() any           { return nil }
