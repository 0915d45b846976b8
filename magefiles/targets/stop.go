package targets

import (
	"context"

	"github.com/migdrp/runpod/magefiles/tags"
)

// stop stops and removes the container of tag; the volume and the image stay.
func (s *session) stop(ctx context.Context, t tags.Tag) error {
	eng, err := s.engine(ctx)
	if err != nil {
		return err
	}
	n := s.names(t.Name)
	st, err := eng.Inspect(ctx, n.Container)
	if err != nil {
		return err
	}
	if !st.Exists {
		s.log.Infof("%s is not running", n.Container)
		return nil
	}
	if err := eng.Stop(ctx, n.Container); err != nil {
		return err
	}
	if err := eng.Remove(ctx, n.Container); err != nil {
		return err
	}
	s.log.Infof("stopped %s (volume %s kept)", n.Container, n.Volume)
	return nil
}
