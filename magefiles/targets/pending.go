package targets

import (
	"context"
	"errors"

	"github.com/migdrp/runpod/magefiles/engine"
	"github.com/migdrp/runpod/magefiles/tags"
)

func (s *session) buildDecision(ctx context.Context, t tags.Tag, force bool, noCache *bool) (
	buildRequest, string, error) {
	req := buildRequest{}
	if noCache != nil {
		req.noCache = *noCache
	}
	return req, "", nil
}

func (s *session) syncProgram(ctx context.Context, eng *engine.Engine) (string, error) {
	return "", errors.New("not yet")
}

func (s *session) seedIfNew(ctx context.Context, eng *engine.Engine, t tags.Tag) error {
	return nil
}

func (s *session) plan(ctx context.Context, t tags.Tag) error   { return errors.New("not yet") }
func (s *session) update(ctx context.Context, t tags.Tag) error { return errors.New("not yet") }
func (s *session) push(ctx context.Context, t tags.Tag) error   { return errors.New("not yet") }
