package targets

import (
	"context"
	"fmt"
	"strings"

	"github.com/migdrp/runpod/magefiles/changes"
	"github.com/migdrp/runpod/magefiles/tags"
)

// status prints one line per tag: image, container, volume.
func (s *session) status(ctx context.Context) error {
	all, err := tags.Discover(s.root)
	if err != nil {
		return err
	}
	eng, err := s.engine(ctx)
	if err != nil {
		return err
	}
	for _, t := range all {
		n := s.names(t.Name)
		img, err := eng.Image(ctx, n.Image)
		if err != nil {
			return err
		}
		st, err := eng.Inspect(ctx, n.Container)
		if err != nil {
			return err
		}
		vol, err := eng.VolumeExists(ctx, n.Volume)
		if err != nil {
			return err
		}

		image := "image: missing"
		if img.Exists {
			image = "image: built " + img.Created.Local().Format("2006-01-02 15:04")
			if rev := img.Labels[changes.LabelRevision]; rev != "" {
				image += " from " + shortRev(rev)
				if img.Labels[changes.LabelDirty] == "true" {
					image += " (uncommitted changes)"
				}
			}
		}
		ctr := "container: none"
		if st.Exists {
			ctr = "container: " + st.Status
			if len(st.Ports) > 0 {
				ctr += " " + strings.Join(st.Ports, " ")
			}
		}
		volume := "volume: none"
		if vol {
			volume = "volume: present"
			if size, err := eng.VolumeSize(ctx, n.Volume); err == nil && size >= 0 {
				volume += ", " + humanBytes(size)
			}
		}
		fmt.Fprintf(s.stdout, "%-10s %s | %s | %s\n", t.Name, image, ctr, volume)
	}
	return nil
}
