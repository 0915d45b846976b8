// Package backup writes a tag's volume to a compressed archive on this machine and puts such
// an archive back, so no volume is removed without a copy that has been read back first.
package backup

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/migdrp/runpod/magefiles/engine"
	"github.com/sirupsen/logrus"
)

const (
	// timeLayout names an archive after the UTC time it was started: 20261203T130405Z.
	timeLayout = "20060102T150405Z"
	// extension of every archive: a gzip-compressed tar.
	extension = ".tar.gz"
	// partSuffix marks an archive still being written; it never has the final name.
	partSuffix = ".part"
	// level favours speed: volumes hold mostly model weights and images, which do not
	// compress, and a backup of hundreds of GB must not be held back by the compressor.
	level = gzip.BestSpeed
)

// progressEvery is how often a long backup or restore logs how far it got.
var progressEvery = 5 * time.Second

var archiveName = regexp.MustCompile(`^\d{8}T\d{6}Z\.tar\.gz$`)

// Result describes an archive that was written and read back.
type Result struct {
	// Path of the archive.
	Path string
	// Files is the number of regular files in the archive.
	Files int64
	// Entries counts every entry: files, folders, links.
	Entries int64
	// Bytes is the content of the regular files, uncompressed.
	Bytes int64
	// ArchiveBytes is the size of the archive on disk.
	ArchiveBytes int64
	// Duration covers writing and reading back.
	Duration time.Duration
}

// Create writes the volume to <dir>/<tag>/<UTC time>.tar.gz and reads the archive back to the
// end before returning, so a Result means the copy is complete and readable. The archive
// appears under its final name only once verified; a failed or cancelled backup leaves
// nothing behind. Folders are made with mode 0700 and the archive with 0600: it holds
// everything the user keeps in the volume.
func Create(ctx context.Context, eng *engine.Engine, volume, dir, tag string) (Result,
	error) {
	start := time.Now()
	if err := checkTag(tag); err != nil {
		return Result{}, err
	}

	// Reserve a name.
	folder := filepath.Join(dir, tag)
	if err := os.MkdirAll(folder, 0o700); err != nil {
		return Result{}, fmt.Errorf("backing up volume %s: %w", volume, err)
	}
	final, err := freeName(ctx, folder)
	if err != nil {
		return Result{}, fmt.Errorf("backing up volume %s: %w", volume, err)
	}
	part := final + partSuffix
	f, err := os.OpenFile(part, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return Result{}, fmt.Errorf("backing up volume %s: %w", volume, err)
	}
	keep := false
	defer func() {
		if !keep {
			_ = f.Close()
			_ = os.Remove(part)
		}
	}()
	logrus.Infof("backing up volume %s to %s", volume, final)

	// Write the archive.
	written, err := write(ctx, eng, volume, f)
	if ctx.Err() != nil {
		return Result{}, fmt.Errorf("backup of volume %s interrupted, no archive kept: %w",
			volume, ctx.Err())
	}
	if err != nil {
		return Result{}, fmt.Errorf("backing up volume %s: %w", volume, err)
	}
	if err := f.Close(); err != nil {
		return Result{}, fmt.Errorf("backing up volume %s: %w", volume, err)
	}

	// Read it back before it may count as a backup.
	logrus.Infof("verifying %s (%s of files)", final, human(written.Bytes))
	read, err := Verify(ctx, part)
	if ctx.Err() != nil {
		return Result{}, fmt.Errorf("backup of volume %s interrupted, no archive kept: %w",
			volume, ctx.Err())
	}
	if err != nil {
		return Result{}, fmt.Errorf("backup of volume %s failed verification: %w", volume, err)
	}
	if read.Entries != written.Entries || read.Files != written.Files ||
		read.Bytes != written.Bytes {
		return Result{}, fmt.Errorf("backup of volume %s failed verification: wrote %d "+
			"entries (%d files, %d bytes), read back %d entries (%d files, %d bytes)", volume,
			written.Entries, written.Files, written.Bytes, read.Entries, read.Files, read.Bytes)
	}

	// Publish under the final name.
	if err := os.Rename(part, final); err != nil {
		return Result{}, fmt.Errorf("backing up volume %s: %w", volume, err)
	}
	keep = true
	syncDir(folder)
	read.Path = final
	read.Duration = time.Since(start)
	return read, nil
}

// write streams the volume through gzip into f and counts what went in.
func write(ctx context.Context, eng *engine.Engine, volume string, f *os.File) (Result,
	error) {
	pr, pw := io.Pipe()
	exported := make(chan error, 1)
	go func() {
		err := eng.ExportVolume(ctx, volume, pw)
		pw.CloseWithError(err)
		exported <- err
	}()

	counted := &counter{r: pr}
	stop := progress(fmt.Sprintf("backing up volume %s", volume), &counted.n, 0)
	buf := bufio.NewWriterSize(f, 1<<20)
	gz, _ := gzip.NewWriterLevel(buf, level)
	res, err := scan(io.TeeReader(counted, gz))
	if err == nil {
		err = gz.Close()
	}
	if err == nil {
		err = buf.Flush()
	}
	if err == nil {
		err = f.Sync()
	}
	stop()
	// Unblock the export when writing failed, then wait for it. The export's own failure
	// explains more than the broken stream it caused.
	stopped := errors.New("backup stopped")
	pr.CloseWithError(stopped)
	if xerr := <-exported; xerr != nil && !errors.Is(xerr, stopped) {
		return Result{}, xerr
	}
	return res, err
}

// Verify reads the archive to its end: every gzip checksum and every tar entry, which must
// stay inside the volume. It returns what the archive holds.
func Verify(ctx context.Context, archive string) (Result, error) {
	f, err := os.Open(archive)
	if err != nil {
		return Result{}, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return Result{}, err
	}
	counted := &counter{r: ctxReader{ctx, f}}
	stop := progress("reading back "+filepath.Base(archive), &counted.n, info.Size())
	defer stop()
	gz, err := gzip.NewReader(bufio.NewReaderSize(counted, 1<<20))
	if err != nil {
		return Result{}, fmt.Errorf("reading %s: %w", archive, err)
	}
	res, err := scan(gz)
	if err != nil {
		return Result{}, fmt.Errorf("reading %s: %w", archive, err)
	}
	if err := gz.Close(); err != nil {
		return Result{}, fmt.Errorf("reading %s: %w", archive, err)
	}
	res.Path = archive
	res.ArchiveBytes = info.Size()
	return res, nil
}

// scan reads a tar stream to its very end, checking entry names and counting the content.
func scan(r io.Reader) (Result, error) {
	var res Result
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return res, fmt.Errorf("entry %d: %w", res.Entries+1, err)
		}
		if err := checkEntry(hdr.Name); err != nil {
			return res, err
		}
		n, err := io.Copy(io.Discard, tr)
		if err != nil {
			return res, fmt.Errorf("%s: %w", hdr.Name, err)
		}
		res.Entries++
		if hdr.Typeflag == tar.TypeReg {
			res.Files++
			res.Bytes += n
		}
	}
	// The padding after the end marker belongs to the stream too; reading it lets gzip
	// reach its checksum.
	if _, err := io.Copy(io.Discard, r); err != nil {
		return res, err
	}
	return res, nil
}

// checkEntry refuses names that would land outside the volume.
func checkEntry(name string) error {
	clean := path.Clean(name)
	if path.IsAbs(name) || clean == ".." || strings.HasPrefix(clean, "../") {
		return fmt.Errorf("entry %q points outside the volume", name)
	}
	return nil
}

// Restore puts the archive back into the volume, creating the volume when it is missing.
// A volume that already holds files is refused unless force, as restoring over it would mix
// the two; with force, files of the archive replace those of the same name and other files
// stay. The whole archive is read once before the volume is touched, so a damaged archive
// changes nothing. An interrupted restore leaves part of the archive in the volume; running
// it again with force completes it.
func Restore(ctx context.Context, eng *engine.Engine, volume, archive string,
	force bool) error {
	// Refuse what would mix contents.
	empty, err := eng.VolumeIsEmpty(ctx, volume)
	if err != nil {
		return fmt.Errorf("restoring %s: %w", archive, err)
	}
	if !empty && !force {
		return fmt.Errorf("volume %s is not empty; restoring %s would mix its files with the "+
			"backup's; set YES=1 to restore over it", volume, archive)
	}

	// Check the archive completely first.
	logrus.Infof("checking %s", archive)
	checked, err := Verify(ctx, archive)
	if err != nil {
		return fmt.Errorf("restoring into volume %s: %s is not a readable backup, volume "+
			"left untouched: %w", volume, archive, err)
	}

	// Stream it in.
	logrus.Infof("restoring %s into volume %s (%d files, %s)", archive, volume,
		checked.Files, human(checked.Bytes))
	f, err := os.Open(archive)
	if err != nil {
		return fmt.Errorf("restoring into volume %s: %w", volume, err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return fmt.Errorf("restoring into volume %s: %w", volume, err)
	}
	counted := &counter{r: f}
	stop := progress(fmt.Sprintf("restoring volume %s", volume), &counted.n, info.Size())
	defer stop()
	gz, err := gzip.NewReader(bufio.NewReaderSize(counted, 1<<20))
	if err != nil {
		return fmt.Errorf("restoring into volume %s: %w", volume, err)
	}
	if err := eng.ImportVolume(ctx, volume, gz); err != nil {
		return fmt.Errorf("restoring %s: %w", archive, err)
	}
	return nil
}

// Latest returns the newest archive of the tag in dir. When there is none, the error
// matches fs.ErrNotExist.
func Latest(dir, tag string) (string, error) {
	if err := checkTag(tag); err != nil {
		return "", err
	}
	folder := filepath.Join(dir, tag)
	entries, err := os.ReadDir(folder)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("listing backups of %s: %w", tag, err)
	}
	var names []string
	for _, en := range entries {
		if en.Type().IsRegular() && archiveName.MatchString(en.Name()) {
			names = append(names, en.Name())
		}
	}
	if len(names) == 0 {
		return "", fmt.Errorf("no backup of %s in %s: %w", tag, folder, fs.ErrNotExist)
	}
	// The names are UTC times of fixed width, so the greatest is the newest.
	return filepath.Join(folder, slices.Max(names)), nil
}

// freeName returns the archive path for the current second, waiting for the next second
// when a backup of this second exists already.
func freeName(ctx context.Context, folder string) (string, error) {
	for range 3 {
		name := filepath.Join(folder, time.Now().UTC().Format(timeLayout)+extension)
		_, err := os.Lstat(name)
		if errors.Is(err, fs.ErrNotExist) {
			if _, err := os.Lstat(name + partSuffix); errors.Is(err, fs.ErrNotExist) {
				return name, nil
			}
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(time.Until(time.Now().Truncate(time.Second).Add(time.Second))):
		}
	}
	return "", fmt.Errorf("no free archive name in %s", folder)
}

func checkTag(tag string) error {
	if tag == "" || tag == "." || tag == ".." || strings.ContainsAny(tag, `/\`) {
		return fmt.Errorf("invalid tag %q for a backup folder", tag)
	}
	return nil
}

// syncDir makes a rename durable; failing to is not worth failing a verified backup.
func syncDir(dir string) {
	d, err := os.Open(dir)
	if err != nil {
		return
	}
	_ = d.Sync()
	_ = d.Close()
}

// progress logs how many bytes went through every progressEvery until stop is called; with a
// known total (> 0) it says how much is left too.
func progress(what string, n *atomic.Int64, total int64) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(finished)
		tick := time.NewTicker(progressEvery)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				b := n.Load()
				rate := human(int64(float64(b) / time.Since(start).Seconds()))
				if total > 0 {
					logrus.Infof("%s: %s of %s so far (%s/s)", what, human(b), human(total),
						rate)
				} else {
					logrus.Infof("%s: %s so far (%s/s)", what, human(b), rate)
				}
			}
		}
	}()
	return func() {
		select {
		case <-done:
		default:
			close(done)
		}
		<-finished
	}
}

// counter counts the bytes read through it.
type counter struct {
	r io.Reader
	n atomic.Int64
}

func (c *counter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// ctxReader stops reading once ctx is cancelled.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// human formats a byte count for a log line: 1.5 GB.
func human(n int64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %cB", float64(n)/float64(div), "kMGTPE"[exp])
}
