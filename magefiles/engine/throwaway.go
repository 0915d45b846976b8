package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"github.com/sirupsen/logrus"
)

// cleanupTimeout bounds removing a throwaway container after the caller's context is done:
// Mage allows about five seconds after Ctrl-C.
const cleanupTimeout = 4 * time.Second

// VolumeContainer is a throwaway container, without network, that mounts one volume at
// /workspace. The tool reads, writes and syncs volumes through such containers, so it needs
// neither a host path (remote engines work) nor a shell in the tag's image.
type VolumeContainer struct {
	Name   string // prefix of the container's name; a random suffix is added
	Image  string
	Cmd    []string // for a container that is started; one only created still needs a command
	Volume string
	Labels map[string]string
}

// WithVolumeContainer creates the container, runs fn with its ID and removes it afterwards,
// also when fn fails or ctx is cancelled.
func (e *Engine) WithVolumeContainer(ctx context.Context, spec VolumeContainer,
	fn func(ctx context.Context, id string) error) (err error) {
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)

	// The engine finishes creating a container even when the request is cancelled, and its
	// ID would never come back to be removed: creation ignores the caller's cancellation.
	createCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	res, err := e.API.ContainerCreate(createCtx, client.ContainerCreateOptions{
		Name:   spec.Name + "-" + hex.EncodeToString(suffix),
		Config: &container.Config{Image: spec.Image, Cmd: spec.Cmd, Labels: spec.Labels},
		HostConfig: &container.HostConfig{
			NetworkMode: network.NetworkNone,
			Mounts: []mount.Mount{{
				Type:   mount.TypeVolume,
				Source: spec.Volume,
				Target: "/workspace",
				// Never copy the image's folder into an empty volume: that would change the
				// owner and mode of the volume's root.
				VolumeOptions: &mount.VolumeOptions{NoCopy: true},
			}},
		},
	})
	if err != nil {
		return fmt.Errorf("creating a container for volume %s: %w", spec.Volume, err)
	}
	defer func() {
		// A fresh context: the caller's may be cancelled already.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer cancel()
		_, rerr := e.API.ContainerRemove(rctx, res.ID, client.ContainerRemoveOptions{Force: true})
		if rerr != nil && !IsNotFound(rerr) {
			logrus.Warnf("could not remove container %.12s: %v", res.ID, rerr)
			if err == nil {
				err = fmt.Errorf("removing container %.12s: %w", res.ID, rerr)
			}
		}
	}()
	return fn(ctx, res.ID)
}

// ImportImage makes the image ref from a root filesystem tar, with Dockerfile-like changes
// (CMD, ENTRYPOINT, LABEL). Nothing is pulled, so it works without a registry.
func (e *Engine) ImportImage(ctx context.Context, ref string, rootfs io.Reader,
	changes ...string) error {
	res, err := e.API.ImageImport(ctx, client.ImageImportSource{Source: rootfs,
		SourceName: "-"}, ref, client.ImageImportOptions{Changes: changes})
	if err != nil {
		return fmt.Errorf("importing %s: %w", ref, err)
	}
	defer res.Close()
	if _, err := io.Copy(io.Discard, res); err != nil {
		return fmt.Errorf("importing %s: %w", ref, err)
	}
	// The engine reports import failures inside the stream; the image is the proof.
	if _, err := e.API.ImageInspect(ctx, ref); err != nil {
		return fmt.Errorf("importing %s: %w", ref, err)
	}
	return nil
}

// Arch is the engine's CPU architecture as Go names it (amd64, arm64), for programs the tool
// compiles to run in its containers.
func (e *Engine) Arch(ctx context.Context) (string, error) {
	v, err := e.API.ServerVersion(ctx, client.ServerVersionOptions{})
	if err != nil {
		return "", fmt.Errorf("asking the engine for its architecture: %w", err)
	}
	return v.Arch, nil
}
