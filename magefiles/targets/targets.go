package targets

import (
	"context"

	"github.com/magefile/mage/mg"

	"github.com/migdrp/runpod/magefiles/gen"
	"github.com/migdrp/runpod/magefiles/tags"
)

//go:generate go run ../cmd/gentargets

// The namespaces read like the documented workflow: build, run, stop, logs, update, and the
// volume's reset and restore. Each has one method per tag, in tags_gen.go.
type (
	// Build builds images.
	Build mg.Namespace
	// Run starts containers.
	Run mg.Namespace
	// Stop stops containers.
	Stop mg.Namespace
	// Logs follows container output.
	Logs mg.Namespace
	// Plan explains what an update would do.
	Plan mg.Namespace
	// Update applies changes to images, volumes and containers.
	Update mg.Namespace
	// ResetVolume backs up and removes a volume.
	ResetVolume mg.Namespace
	// RestoreVolume puts a backup back.
	RestoreVolume mg.Namespace
	// Clean removes a tag's container, volume and image.
	Clean mg.Namespace
	// Push publishes images.
	Push mg.Namespace
	// Ci holds what the GitHub workflow runs.
	Ci mg.Namespace
)

// All builds every tag, each only when it is not current.
//
// Environment: IMAGE_REPO, FORCE, NO_CACHE, BASE_IMAGE, DOCKER_HOST.
func (Build) All(ctx context.Context) error { return forEach(ctx, (*session).build) }

// All stops and removes every tag's container; keeps volumes and images.
//
// Environment: IMAGE_REPO, DOCKER_HOST.
func (Stop) All(ctx context.Context) error { return forEach(ctx, (*session).stop) }

// Status prints one line per tag: image and its revision, container and ports, volume size.
//
// Environment: IMAGE_REPO, DOCKER_HOST.
func Status(ctx context.Context) error {
	s, err := newSession()
	if err != nil {
		return err
	}
	defer s.close()
	return s.status(ctx)
}

// Generate rewrites the per-tag targets from the runpod-<tag>/ directories.
func Generate() error {
	s, err := newSession()
	if err != nil {
		return err
	}
	path, err := gen.Write(s.root)
	if err != nil {
		return err
	}
	s.log.Infof("wrote %s", rel(s.root, path))
	return nil
}

// withArg is with for a verb that takes one argument from the command line.
func withArg(ctx context.Context, tag, arg string,
	verb func(*session, context.Context, tags.Tag, string) error) error {
	return with(ctx, tag, func(s *session, ctx context.Context, t tags.Tag) error {
		return verb(s, ctx, t, arg)
	})
}

// forEach runs verb for every tag in name order, stopping at the first failure.
func forEach(ctx context.Context, verb func(*session, context.Context, tags.Tag) error) error {
	s, err := newSession()
	if err != nil {
		return err
	}
	defer s.close()
	all, err := tags.Discover(s.root)
	if err != nil {
		return err
	}
	for _, t := range all {
		if err := verb(s, ctx, t); err != nil {
			return err
		}
	}
	return nil
}
