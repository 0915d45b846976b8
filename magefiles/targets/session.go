// Package targets holds the Mage targets of the repository: per-tag verbs (build, run, stop,
// logs, update, ...) generated from the runpod-<tag>/ directories, and a few fixed targets. The
// targets are thin: each opens a session and calls one verb; the work is in the packages beside.
package targets

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/sirupsen/logrus"

	"github.com/migdrp/runpod/magefiles/engine"
	"github.com/migdrp/runpod/magefiles/tags"
)

// session is what every verb works with: the repository, the settings from the environment,
// the streams of the terminal and, once opened, the engine.
type session struct {
	root   string
	getenv func(string) string
	stdin  *os.File // nil when there is no terminal to ask
	stdout io.Writer
	stderr io.Writer
	log    *logrus.Logger
	eng    *engine.Engine
}

// newSession makes the session of a mage invocation: the repository around the working
// directory and the process environment.
func newSession() (*session, error) {
	wd, err := os.Getwd()
	if err != nil {
		return nil, err
	}
	root, err := tags.Root(wd)
	if err != nil {
		return nil, err
	}
	s := &session{root: root, getenv: os.Getenv, stdin: os.Stdin, stdout: os.Stdout,
		stderr: os.Stderr}
	// The packages below log through logrus's standard logger; one format for all.
	s.log = logrus.StandardLogger()
	configureLogger(s.log, os.Stderr, os.Getenv("DEBUG") != "" ||
		os.Getenv("MAGEFILE_DEBUG") != "")
	return s, nil
}

// with runs verb for tag in a fresh session, closing the engine connection after.
func with(ctx context.Context, tag string,
	verb func(*session, context.Context, tags.Tag) error) error {
	s, err := newSession()
	if err != nil {
		return err
	}
	defer s.close()
	t, err := tags.Find(s.root, tag)
	if err != nil {
		return err
	}
	return verb(s, ctx, t)
}

// engine connects on first use.
func (s *session) engine(ctx context.Context) (*engine.Engine, error) {
	if s.eng != nil {
		return s.eng, nil
	}
	e, err := engine.Connect(ctx)
	if err != nil {
		return nil, err
	}
	s.eng = e
	return e, nil
}

func (s *session) close() {
	if s.eng != nil {
		_ = s.eng.Close()
	}
}

// names of tag under IMAGE_REPO.
func (s *session) names(tag string) tags.Names {
	return tags.NamesFor(s.getenv("IMAGE_REPO"), tag)
}

// setting returns an environment setting or its default.
func (s *session) setting(key, def string) string {
	if v := strings.TrimSpace(s.getenv(key)); v != "" {
		return v
	}
	return def
}

// flag reads a yes/no setting: nil when unset, an error for a value that is neither.
func (s *session) flag(key string) (*bool, error) {
	v := strings.TrimSpace(s.getenv(key))
	if v == "" {
		return nil, nil
	}
	b, err := strconv.ParseBool(strings.ToLower(v))
	if err != nil {
		switch strings.ToLower(v) {
		case "yes", "y", "on":
			b, err = true, nil
		case "no", "n", "off":
			b, err = false, nil
		}
	}
	if err != nil {
		return nil, fmt.Errorf("%s=%q is not a yes/no value; use %s=1 or %s=0", key, v, key, key)
	}
	return &b, nil
}

// enabled is flag with a default for unset.
func (s *session) enabled(key string, def bool) (bool, error) {
	b, err := s.flag(key)
	if err != nil || b == nil {
		return def, err
	}
	return *b, nil
}

// newLogger logs to w as "level message", without timestamps: the user is watching.
func newLogger(w io.Writer, debug bool) *logrus.Logger {
	l := logrus.New()
	configureLogger(l, w, debug)
	return l
}

func configureLogger(l *logrus.Logger, w io.Writer, debug bool) {
	l.SetOutput(w)
	l.SetFormatter(plainFormatter{})
	if debug {
		l.SetLevel(logrus.DebugLevel)
	}
}

type plainFormatter struct{}

func (plainFormatter) Format(e *logrus.Entry) ([]byte, error) {
	var b strings.Builder
	if e.Level != logrus.InfoLevel {
		b.WriteString(strings.ToUpper(e.Level.String()))
		b.WriteString(": ")
	}
	b.WriteString(e.Message)
	for k, v := range e.Data {
		fmt.Fprintf(&b, " %s=%v", k, v)
	}
	b.WriteByte('\n')
	return []byte(b.String()), nil
}
