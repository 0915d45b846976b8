// Package workspace keeps the scripts in a tag's workspace volume in step with the tag's
// template without losing what the user changed. The rules live in dirsync, shared with the
// runpod-workspace binary that images run at start; this package applies them to a Docker
// volume on any engine.
package workspace

import "github.com/migdrp/runpod/magefiles/workspace/dirsync"

// Summary lists what a sync did; String gives the one-line form.
type Summary = dirsync.Summary

const (
	// ManifestName is the manifest's file at the workspace root.
	ManifestName = dirsync.ManifestName
	// ConflictSuffix names the template's version written beside a file both sides changed.
	ConflictSuffix = dirsync.ConflictSuffix
)

// Sync brings the local directory workspaceDir in step with templateDir.
func Sync(templateDir, workspaceDir string) (Summary, error) {
	return dirsync.Sync(templateDir, workspaceDir)
}
