package dirsync

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"

	"github.com/sirupsen/logrus"
)

// ManifestName is the manifest's file at the workspace root. It records, for every file the
// template put into the workspace, the checksum and mode it had then.
const ManifestName = ".runpod-manifest.json"

const manifestVersion = 1

type manifest struct {
	Version int              `json:"version"`
	Files   map[string]entry `json:"files"`
}

// entry is one file as the template had it: hex SHA-256 and octal permission bits ("0755").
type entry struct {
	Hash string `json:"sha256"`
	Mode string `json:"mode"`
}

func (e entry) perm() fs.FileMode {
	m, err := strconv.ParseUint(e.Mode, 8, 32)
	if err != nil {
		return 0o644
	}
	return fs.FileMode(m).Perm()
}

func formatMode(m fs.FileMode) string { return fmt.Sprintf("%04o", m.Perm()) }

// readManifest returns the workspace's manifest and its raw bytes. A missing one is empty. An
// unreadable one is treated as missing, which is safe: without a manifest the sync adopts
// identical files and never overwrites a differing one; it only cannot remove files.
func readManifest(root *os.Root) (manifest, []byte) {
	empty := manifest{Version: manifestVersion, Files: map[string]entry{}}
	raw, err := root.ReadFile(ManifestName)
	if errors.Is(err, fs.ErrNotExist) {
		return empty, nil
	}
	if err != nil {
		logrus.Warnf("reading %s: %v; syncing as if the workspace had none", ManifestName, err)
		return empty, nil
	}
	var m manifest
	if err := json.Unmarshal(raw, &m); err != nil || m.Version != manifestVersion {
		logrus.Warnf("%s is not a version %d manifest; syncing as if the workspace had none",
			ManifestName, manifestVersion)
		return empty, raw
	}
	files := map[string]entry{}
	for p, e := range m.Files {
		if !validPath(p) {
			logrus.Warnf("%s names %q, which is outside the workspace; ignoring it", ManifestName, p)
			continue
		}
		files[p] = e
	}
	m.Files = files
	return m, raw
}

// writeManifest replaces the manifest atomically, unless it would not change.
func writeManifest(root *os.Root, m manifest, old []byte) error {
	// Map keys are encoded sorted, so equal manifests have equal bytes.
	raw, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding manifest: %w", err)
	}
	raw = append(raw, '\n')
	if bytes.Equal(raw, old) {
		return nil
	}
	if err := writeAtomic(root, ManifestName, bytes.NewReader(raw), 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", ManifestName, err)
	}
	return nil
}
