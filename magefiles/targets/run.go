package targets

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/migdrp/runpod/magefiles/changes"
	"github.com/migdrp/runpod/magefiles/engine"
	"github.com/migdrp/runpod/magefiles/envfile"
	"github.com/migdrp/runpod/magefiles/tags"
)

// run builds the image when missing, then creates and starts the container of tag with its
// env file, ports, GPUs and volume; in the foreground unless DETACH=1.
func (s *session) run(ctx context.Context, t tags.Tag) error {
	detach, err := s.enabled("DETACH", false)
	if err != nil {
		return err
	}
	unlock, err := lockTag(s.names(t.Name).Container)
	if err != nil {
		return err
	}
	defer unlock()

	env, err := s.envFile(t)
	if err != nil {
		return err
	}
	eng, err := s.engine(ctx)
	if err != nil {
		return err
	}
	if err := s.refuseRunning(ctx, eng, t); err != nil {
		return err
	}
	img, err := eng.Image(ctx, s.names(t.Name).Image)
	if err != nil {
		return err
	}
	if !img.Exists {
		s.log.Infof("%s is missing: building it first", s.names(t.Name).Image)
		if err := s.buildImage(ctx, eng, t, buildRequest{reason: "no image yet"}); err != nil {
			return err
		}
	}
	return s.startContainer(ctx, eng, t, env, detach)
}

// refuseRunning fails when the tag's container is already running.
func (s *session) refuseRunning(ctx context.Context, eng *engine.Engine, t tags.Tag) error {
	n := s.names(t.Name)
	st, err := eng.Inspect(ctx, n.Container)
	if err != nil {
		return err
	}
	if st.Running {
		return alreadyRunning(n, t)
	}
	return nil
}

func alreadyRunning(n tags.Names, t tags.Tag) error {
	return fmt.Errorf("container %s is already running; stop it with `mage stop:%s` or "+
		"follow it with `mage logs:%s`", n.Container, t.Name, t.Name)
}

// startContainer creates the container and runs it, detached or in the foreground.
func (s *session) startContainer(ctx context.Context, eng *engine.Engine, t tags.Tag,
	env *envfile.File, detach bool) error {
	n := s.names(t.Name)
	spec, err := s.runSpec(ctx, eng, t, env, !detach)
	if err != nil {
		return err
	}
	if err := s.seedIfNew(ctx, eng, t); err != nil {
		return err
	}

	id, err := eng.Create(ctx, spec)
	if errors.Is(err, engine.ErrRunning) {
		return alreadyRunning(n, t)
	}
	if err != nil {
		return err
	}
	s.log.Infof("starting %s from %s (volume %s, ports %s)", n.Container, n.Image, n.Volume,
		portList(spec))
	s.log.Debugf("environment from %s: %s", rel(s.root, env.Path),
		strings.Join(env.MaskedEnv(), " "))

	redact := env.Redactor()
	if detach {
		if err := eng.Start(ctx, id); err != nil {
			s.removeQuietly(n.Container)
			return err
		}
		if err := eng.WaitRunning(ctx, n.Container, 2*time.Second); err != nil {
			return err
		}
		s.log.Infof("%s is running; follow it with `mage logs:%s`, stop it with `mage stop:%s`",
			n.Container, t.Name, t.Name)
		return nil
	}
	stdout, stderr := redact.Writer(s.stdout), redact.Writer(s.stderr)
	defer stdout.Flush()
	defer stderr.Flush()
	code, err := eng.RunForeground(ctx, id, stdout, stderr)
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		s.log.Infof("stopped %s", n.Container)
		return nil
	}
	if err != nil {
		s.removeQuietly(n.Container)
		return err
	}
	if code != 0 {
		return fmt.Errorf("container %s exited with code %d", n.Container, code)
	}
	return nil
}

// runSpec assembles the container of tag from the image, the env file and the settings.
func (s *session) runSpec(ctx context.Context, eng *engine.Engine, t tags.Tag,
	env *envfile.File, foreground bool) (engine.RunSpec, error) {
	n := s.names(t.Name)
	spec := engine.RunSpec{
		Name:        n.Container,
		Image:       n.Image,
		Volume:      n.Volume,
		Env:         env.Env(),
		BindAddress: s.setting("BIND_ADDRESS", "127.0.0.1"),
		AutoRemove:  foreground,
		Labels:      map[string]string{changes.LabelPrefix + "tag": t.Name},
	}
	if fp, err := s.envFingerprint(env); err == nil {
		spec.Labels[changes.LabelEnvFingerprint] = fp
	} else {
		s.log.Debugf("no env fingerprint: %v", err)
	}

	// The template is bind-mounted only where the host folder exists: on this machine.
	template := filepath.Join(t.Dir, "workspace")
	if _, err := os.Stat(template); err == nil {
		if eng.Local {
			spec.TemplateDir = template
		} else {
			s.log.Infof("DOCKER_HOST is a remote engine: %s is not mounted at "+
				"/workspace_template there; the image's own copy is used", rel(s.root, template))
		}
	}

	// GPUs when the engine has the NVIDIA runtime, unless GPUS=none.
	if gpus := s.setting("GPUS", "all"); gpus != "none" {
		ok, err := eng.HasNvidiaRuntime(ctx)
		if err != nil {
			return spec, err
		}
		if ok {
			spec.GPUs = true
		} else {
			s.log.Warn("the engine has no NVIDIA runtime: running on CPU (install the NVIDIA " +
				"Container Toolkit for GPUs, or set GPUS=none to silence this)")
		}
	}

	// Every exposed port on the same host port. One held by another program would fail late
	// and vaguely in the engine; say it first.
	ports, err := eng.ExposedPorts(ctx, n.Image)
	if err != nil {
		return spec, err
	}
	spec.Ports = ports
	if eng.Local {
		if err := engine.CheckPortsFree(spec.BindAddress, ports); err != nil {
			return spec, err
		}
	}
	return spec, nil
}

// envFile loads the tag's env file, creating it from its example on first use.
func (s *session) envFile(t tags.Tag) (*envfile.File, error) {
	path := envfile.PathFor(s.root, t.Name)
	f, err := envfile.Load(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return f, err
	}
	example := envfile.ExamplePath(path)
	if _, statErr := os.Stat(example); statErr != nil {
		return nil, err
	}
	created, err := envfile.CreateFromExample(example, path)
	if err != nil {
		return nil, err
	}
	s.log.Infof("wrote %s from %s (mode 0600)", rel(s.root, created.Path), rel(s.root, example))
	if len(created.Generated) > 0 {
		s.log.Infof("generated random values for %s", strings.Join(created.Generated, ", "))
	}
	if len(created.Missing) > 0 {
		s.log.Warnf("still without a value in %s: %s", rel(s.root, created.Path),
			strings.Join(created.Missing, ", "))
	}
	return envfile.Load(path)
}

func (s *session) envFingerprint(env *envfile.File) (string, error) {
	key, err := envfile.LocalKey()
	if err != nil {
		return "", err
	}
	return envfile.Fingerprint(env, key), nil
}

// removeQuietly removes a container that failed to start, with a fresh context: the caller's
// may be cancelled already.
func (s *session) removeQuietly(name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
	defer cancel()
	if s.eng != nil {
		_ = s.eng.Remove(ctx, name)
	}
}

func portList(spec engine.RunSpec) string {
	if len(spec.Ports) == 0 {
		return "none"
	}
	var b []string
	for _, p := range spec.Ports {
		b = append(b, spec.BindAddress+":"+p.Port())
	}
	return strings.Join(b, ", ")
}

func rel(root, p string) string {
	if r, err := filepath.Rel(root, p); err == nil && !strings.HasPrefix(r, "..") {
		return r
	}
	return p
}
