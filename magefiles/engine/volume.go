package engine

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"path"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/sirupsen/logrus"
)

// Volumes are read and written through a container that is created with the volume mounted
// and never started: the engine's archive API works on such a container, needs no host path
// (so it works against a remote engine too) and needs no image of the tag.
const (
	// VolumeAccessImage is the tiny image the access container is made from: an empty
	// /workspace and nothing else. It is imported locally, never pulled.
	VolumeAccessImage = "runpod-mage/volume-access:1"
	// volAccessMountPoint is where the access container sees the volume.
	volAccessMountPoint = "/workspace"
	// volAccessLabel marks access containers, so leftovers of a killed run can be recognised.
	volAccessLabel = "runpod-mage.volume-access"
)

// VolumeExists reports whether the engine has a volume of that name.
func (e *Engine) VolumeExists(ctx context.Context, name string) (bool, error) {
	_, err := e.API.VolumeInspect(ctx, name, client.VolumeInspectOptions{})
	switch {
	case err == nil:
		return true, nil
	case IsNotFound(err):
		return false, nil
	}
	return false, fmt.Errorf("inspecting volume %s: %w", name, err)
}

// VolumeIsEmpty reports whether the volume holds no file at all. A missing volume counts as
// empty. Only the first entries of the volume are read, so it is quick on a large volume.
func (e *Engine) VolumeIsEmpty(ctx context.Context, name string) (bool, error) {
	exists, err := e.VolumeExists(ctx, name)
	if err != nil || !exists {
		return !exists, err
	}
	empty := true
	err = e.volAccessWith(ctx, name, func(ctx context.Context, id string) error {
		res, err := e.API.CopyFromContainer(ctx, id,
			client.CopyFromContainerOptions{SourcePath: volAccessMountPoint + "/"})
		if err != nil {
			return fmt.Errorf("reading volume %s: %w", name, err)
		}
		// Closing early stops the engine from streaming the rest of the volume.
		defer res.Content.Close()
		if !res.Stat.Mode.IsDir() {
			return fmt.Errorf("volume %s: %s is not a directory", name, volAccessMountPoint)
		}
		tr := tar.NewReader(res.Content)
		for {
			hdr, err := tr.Next()
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return fmt.Errorf("reading volume %s: %w", name, err)
			}
			if _, ok := volAccessRelName(hdr.Name); ok {
				empty = false
				return nil
			}
		}
	})
	return empty, err
}

// ExportVolume writes the whole volume to w as an uncompressed tar stream. Entry names are
// relative to the volume's root ("models/x.safetensors"; the root itself is "./"), so
// ImportVolume, or `tar -x` in an empty folder, puts every file back in place with its mode,
// owner and modification time. A missing volume is an error: there is nothing to export.
func (e *Engine) ExportVolume(ctx context.Context, name string, w io.Writer) error {
	exists, err := e.VolumeExists(ctx, name)
	if err != nil {
		return err
	}
	if !exists {
		return fmt.Errorf("exporting volume %s: %w", name,
			cerrdefs.ErrNotFound.WithMessage("volume "+name+" does not exist"))
	}
	return e.volAccessWith(ctx, name, func(ctx context.Context, id string) error {
		res, err := e.API.CopyFromContainer(ctx, id,
			client.CopyFromContainerOptions{SourcePath: volAccessMountPoint + "/"})
		if err != nil {
			return fmt.Errorf("exporting volume %s: %w", name, err)
		}
		defer res.Content.Close()
		if err := volAccessRebase(res.Content, w); err != nil {
			if ctx.Err() != nil {
				err = ctx.Err()
			}
			return fmt.Errorf("exporting volume %s: %w", name, err)
		}
		return nil
	})
}

// volAccessRebase copies the engine's tar of /workspace to w, renaming "workspace/x" to "x".
func volAccessRebase(r io.Reader, w io.Writer) error {
	tr := tar.NewReader(r)
	tw := tar.NewWriter(w)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		rel, ok := volAccessRelName(hdr.Name)
		if !ok {
			// The root folder: kept as "./" so its mode and owner travel too.
			rel = "./"
		}
		hdr.Name = rel
		if hdr.Typeflag == tar.TypeLink {
			// Hard links name another entry of the archive, which was renamed too.
			if target, ok := volAccessRelName(hdr.Linkname); ok {
				hdr.Linkname = target
			}
		}
		// Let the writer choose a format that fits the new name.
		hdr.Format = tar.FormatUnknown
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return err
		}
	}
	return tw.Close()
}

// volAccessRelName turns an entry name of the engine's tar ("workspace/a/b") into a name
// relative to the volume ("a/b"); ok is false for the root folder itself.
func volAccessRelName(name string) (string, bool) {
	name = strings.TrimPrefix(name, "./")
	_, rest, found := strings.Cut(name, "/")
	if !found || strings.Trim(rest, "/") == "" {
		return "", false
	}
	return rest, true
}

// ImportVolume extracts the tar stream r into the volume, creating the volume when it is
// missing. Entries are named relative to the volume's root, as ExportVolume writes them;
// existing files of the same name are overwritten, others are left alone. Callers that must
// not mix old and new content check VolumeIsEmpty first.
func (e *Engine) ImportVolume(ctx context.Context, name string, r io.Reader) error {
	if _, err := e.API.VolumeCreate(ctx, client.VolumeCreateOptions{Name: name}); err != nil {
		return fmt.Errorf("creating volume %s: %w", name, err)
	}
	return e.volAccessWith(ctx, name, func(ctx context.Context, id string) error {
		_, err := e.API.CopyToContainer(ctx, id, client.CopyToContainerOptions{
			DestinationPath: volAccessMountPoint,
			Content:         r,
		})
		if err != nil {
			if ctx.Err() != nil {
				err = ctx.Err()
			}
			return fmt.Errorf("writing into volume %s: %w", name, err)
		}
		return nil
	})
}

// RemoveVolume deletes the volume and everything in it. A missing volume is already done.
// A volume in use is an error naming the containers that use it; leftover access containers
// of an interrupted earlier run are removed instead of blocking.
func (e *Engine) RemoveVolume(ctx context.Context, name string) error {
	err := e.volRemove(ctx, name)
	if err == nil || !IsConflict(err) {
		return err
	}

	// In use: drop our own never-started access containers, then name the others.
	users, lerr := e.volUsers(ctx, name)
	if lerr != nil {
		return fmt.Errorf("removing volume %s: in use (%v)", name, lerr)
	}
	var others []string
	for _, c := range users {
		if c.Labels[volAccessLabel] == "1" {
			logrus.Debugf("removing leftover access container %s", c.ID)
			_, rerr := e.API.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{})
			if rerr == nil || IsNotFound(rerr) {
				continue
			}
		}
		others = append(others, fmt.Sprintf("%s (%s)", volContainerName(c), c.State))
	}
	if len(others) == 0 {
		return e.volRemove(ctx, name)
	}
	return fmt.Errorf("volume %s is in use by container %s; stop and remove it first",
		name, strings.Join(others, ", "))
}

// volRemove removes the volume, treating "not found" as done.
func (e *Engine) volRemove(ctx context.Context, name string) error {
	_, err := e.API.VolumeRemove(ctx, name, client.VolumeRemoveOptions{})
	switch {
	case err == nil, IsNotFound(err):
		return nil
	case IsConflict(err):
		return err
	}
	return fmt.Errorf("removing volume %s: %w", name, err)
}

// volUsers lists every container, running or not, that mounts the volume.
func (e *Engine) volUsers(ctx context.Context, name string) ([]container.Summary, error) {
	res, err := e.API.ContainerList(ctx, client.ContainerListOptions{
		All:     true,
		Filters: make(client.Filters).Add("volume", name),
	})
	if err != nil {
		return nil, fmt.Errorf("listing containers using volume %s: %w", name, err)
	}
	return res.Items, nil
}

func volContainerName(c container.Summary) string {
	if len(c.Names) > 0 {
		return strings.TrimPrefix(c.Names[0], "/")
	}
	if len(c.ID) > 12 {
		return c.ID[:12]
	}
	return c.ID
}

// VolumeSize returns the bytes the volume uses according to the engine's disk usage, or -1
// when the engine does not know (volume drivers other than "local" do not report it). The
// engine walks every volume to answer, which can take a while on large volumes. A missing
// volume is an error that IsNotFound recognises.
func (e *Engine) VolumeSize(ctx context.Context, name string) (int64, error) {
	du, err := e.API.DiskUsage(ctx, client.DiskUsageOptions{Volumes: true, Verbose: true})
	if err != nil {
		return -1, fmt.Errorf("reading disk usage of volume %s: %w", name, err)
	}
	for _, v := range du.Volumes.Items {
		if v.Name != name {
			continue
		}
		if v.UsageData == nil || v.UsageData.Size < 0 {
			return -1, nil
		}
		return v.UsageData.Size, nil
	}
	return -1, fmt.Errorf("reading size of volume %s: %w", name,
		cerrdefs.ErrNotFound.WithMessage("volume "+name+" does not exist"))
}

// volAccessWith runs fn with the ID of a never-started access container that mounts the
// volume, and removes the container afterwards.
func (e *Engine) volAccessWith(ctx context.Context, volume string,
	fn func(ctx context.Context, id string) error) error {
	if err := e.volAccessEnsureImage(ctx); err != nil {
		return err
	}
	return e.WithVolumeContainer(ctx, VolumeContainer{Name: "runpod-mage-volume-access",
		Image: VolumeAccessImage, Volume: volume, Labels: map[string]string{volAccessLabel: "1"}},
		fn)
}

// volAccessEnsureImage imports the access image unless the engine has it. It is built from a
// tar made here, so no registry is needed.
func (e *Engine) volAccessEnsureImage(ctx context.Context) error {
	if _, err := e.API.ImageInspect(ctx, VolumeAccessImage); err == nil {
		return nil
	} else if !IsNotFound(err) {
		return fmt.Errorf("inspecting %s: %w", VolumeAccessImage, err)
	}
	logrus.Debugf("importing %s", VolumeAccessImage)

	var rootfs bytes.Buffer
	tw := tar.NewWriter(&rootfs)
	err := tw.WriteHeader(&tar.Header{
		Typeflag: tar.TypeDir,
		Name:     path.Base(volAccessMountPoint) + "/",
		Mode:     0o755,
		ModTime:  time.Unix(0, 0),
	})
	if err == nil {
		err = tw.Close()
	}
	if err != nil {
		return fmt.Errorf("making %s: %w", VolumeAccessImage, err)
	}

	// The image never runs; CMD only satisfies container creation.
	return e.ImportImage(ctx, VolumeAccessImage, &rootfs, `CMD ["/none"]`)
}
