package targets

import (
	"bufio"
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"golang.org/x/term"

	"github.com/migdrp/runpod/magefiles/backup"
	"github.com/migdrp/runpod/magefiles/engine"
	"github.com/migdrp/runpod/magefiles/tags"
)

// resetVolume stops the container, backs the volume up, checks the backup, and removes the
// volume, after asking.
func (s *session) resetVolume(ctx context.Context, t tags.Tag) error {
	eng, err := s.engine(ctx)
	if err != nil {
		return err
	}
	n := s.names(t.Name)
	exists, err := eng.VolumeExists(ctx, n.Volume)
	if err != nil {
		return err
	}
	if !exists {
		s.log.Infof("volume %s does not exist: nothing to reset", n.Volume)
		return nil
	}
	if err := s.confirmVolumeRemoval(n.Volume); err != nil {
		return err
	}
	if err := s.stop(ctx, t); err != nil {
		return err
	}
	return s.backupAndRemoveVolume(ctx, eng, t)
}

// backupAndRemoveVolume is the one path by which a volume is removed: a backup first, read
// back before anything is deleted, unless BACKUP=0 together with YES=1.
func (s *session) backupAndRemoveVolume(ctx context.Context, eng *engine.Engine,
	t tags.Tag) error {
	n := s.names(t.Name)
	skip, err := s.skipBackup()
	if err != nil {
		return err
	}
	if skip {
		s.log.Warnf("BACKUP=0 and YES=1: removing %s without a backup", n.Volume)
	} else {
		dir := s.backupDir()
		s.log.Infof("backing up volume %s to %s", n.Volume, rel(s.root, filepath.Join(dir,
			t.Name)))
		res, err := backup.Create(ctx, eng, n.Volume, dir, t.Name)
		if err != nil {
			return fmt.Errorf("backup of %s failed, the volume is untouched: %w", n.Volume, err)
		}
		s.log.Infof("backup %s verified: %d files, %s; `mage restoreVolume:%s latest` puts "+
			"it back", rel(s.root, res.Path), res.Files, humanBytes(res.Bytes), t.Name)
	}
	if err := eng.RemoveVolume(ctx, n.Volume); err != nil {
		return err
	}
	s.log.Infof("removed volume %s; the next run seeds a new one", n.Volume)
	return nil
}

// restoreVolume puts archive ("latest" for the newest backup of the tag) back into the tag's
// volume, which must be empty unless YES=1.
func (s *session) restoreVolume(ctx context.Context, t tags.Tag, archive string) error {
	eng, err := s.engine(ctx)
	if err != nil {
		return err
	}
	n := s.names(t.Name)
	st, err := eng.Inspect(ctx, n.Container)
	if err != nil {
		return err
	}
	if st.Running {
		return fmt.Errorf("container %s is running and using %s; stop it first with "+
			"`mage stop:%s`", n.Container, n.Volume, t.Name)
	}
	force, err := s.enabled("YES", false)
	if err != nil {
		return err
	}
	if archive == "latest" {
		if archive, err = backup.Latest(s.backupDir(), t.Name); err != nil {
			return fmt.Errorf("no backup of %s in %s: %w", t.Name, rel(s.root, s.backupDir()),
				err)
		}
	} else if !filepath.IsAbs(archive) {
		archive = filepath.Join(s.root, archive)
	}
	s.log.Infof("restoring %s into volume %s", rel(s.root, archive), n.Volume)
	if err := backup.Restore(ctx, eng, n.Volume, archive, force); err != nil {
		return err
	}
	s.log.Infof("restored %s", n.Volume)
	return nil
}

// clean removes the container, the volume (through a backup) and the image of tag.
func (s *session) clean(ctx context.Context, t tags.Tag) error {
	eng, err := s.engine(ctx)
	if err != nil {
		return err
	}
	n := s.names(t.Name)
	exists, err := eng.VolumeExists(ctx, n.Volume)
	if err != nil {
		return err
	}
	if exists {
		if err := s.confirmVolumeRemoval(n.Volume); err != nil {
			return err
		}
	}
	if err := s.stop(ctx, t); err != nil {
		return err
	}
	if exists {
		if err := s.backupAndRemoveVolume(ctx, eng, t); err != nil {
			return err
		}
	}
	if err := eng.RemoveImage(ctx, n.Image); err != nil {
		return err
	}
	s.log.Infof("removed image %s", n.Image)
	return nil
}

// confirmVolumeRemoval asks on a terminal; without one it needs YES=1.
func (s *session) confirmVolumeRemoval(volume string) error {
	yes, err := s.enabled("YES", false)
	if err != nil {
		return err
	}
	if yes {
		return nil
	}
	what := "back up and then remove"
	if skip, _ := s.skipBackupRequested(); skip {
		return fmt.Errorf("BACKUP=0 removes volume %s without a backup and needs YES=1 too",
			volume)
	}
	if s.stdin == nil || !term.IsTerminal(int(s.stdin.Fd())) {
		return fmt.Errorf("refusing to remove volume %s without confirmation: there is no "+
			"terminal to ask; set YES=1 (a backup is still written first)", volume)
	}
	fmt.Fprintf(s.stderr, "This will %s volume %s (models, outputs, installs). Continue? "+
		"[y/N] ", what, volume)
	answer, _ := bufio.NewReader(s.stdin).ReadString('\n')
	switch strings.ToLower(strings.TrimSpace(answer)) {
	case "y", "yes":
		return nil
	}
	return fmt.Errorf("volume %s kept: not confirmed", volume)
}

// skipBackup is true only for BACKUP=0 together with YES=1.
func (s *session) skipBackup() (bool, error) {
	skip, err := s.skipBackupRequested()
	if err != nil || !skip {
		return false, err
	}
	yes, err := s.enabled("YES", false)
	if err != nil {
		return false, err
	}
	if !yes {
		return false, fmt.Errorf("BACKUP=0 removes the volume without a backup and needs " +
			"YES=1 too")
	}
	return true, nil
}

func (s *session) skipBackupRequested() (bool, error) {
	b, err := s.enabled("BACKUP", true)
	return !b, err
}

// backupDir is BACKUP_DIR or backups/ at the repository root.
func (s *session) backupDir() string {
	dir := s.setting("BACKUP_DIR", filepath.Join(s.root, "backups"))
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(s.root, dir)
	}
	return dir
}
