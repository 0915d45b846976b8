package targets

import (
	"context"
	"fmt"

	"github.com/migdrp/runpod/magefiles/envfile"
	"github.com/migdrp/runpod/magefiles/tags"
)

// logs follows the output of the container of tag, with the env file's secrets masked.
func (s *session) logs(ctx context.Context, t tags.Tag) error {
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
		return fmt.Errorf("there is no container %s; start it with `mage run:%s`", n.Container,
			t.Name)
	}
	redact := envfile.NewRedactor()
	if env, err := envfile.Load(envfile.PathFor(s.root, t.Name)); err == nil {
		redact = env.Redactor()
	}
	stdout, stderr := redact.Writer(s.stdout), redact.Writer(s.stderr)
	defer stdout.Flush()
	defer stderr.Flush()
	return eng.Logs(ctx, n.Container, true, "all", stdout, stderr)
}
