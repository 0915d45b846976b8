// Package engine talks to the Docker Engine through its Go SDK: it builds images, runs and
// stops containers, and reads and writes volumes for the targets of each tag.
package engine

import (
	"context"
	"errors"
	"fmt"
	"net/url"

	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
)

// Engine is a connection to one Docker Engine.
type Engine struct {
	API *client.Client
	// Local is true when the engine runs on this machine, so host paths can be bind-mounted.
	Local bool
}

// ErrUnreachable marks a failure to reach the engine at all.
var ErrUnreachable = errors.New("docker engine unreachable")

// Connect opens a connection configured from DOCKER_HOST and friends, negotiates the API
// version with the engine and checks that it answers.
func Connect(ctx context.Context) (*Engine, error) {
	api, err := client.New(client.FromEnv, client.WithAPIVersionNegotiation(),
		client.WithUserAgent("runpod-mage"))
	if err != nil {
		return nil, fmt.Errorf("%w: %v; check DOCKER_HOST, then try `docker info`",
			ErrUnreachable, err)
	}
	if _, err := api.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		_ = api.Close()
		return nil, fmt.Errorf("%w at %s: %v; is the daemon running? try `docker info`",
			ErrUnreachable, api.DaemonHost(), firstLine(err))
	}
	return &Engine{API: api, Local: isLocalHost(api.DaemonHost())}, nil
}

// Close releases the connection.
func (e *Engine) Close() error { return e.API.Close() }

// isLocalHost tells whether a DOCKER_HOST value names this machine: a unix socket, a Windows
// named pipe, or TCP to a loopback address.
func isLocalHost(host string) bool {
	u, err := url.Parse(host)
	if err != nil {
		return false
	}
	switch u.Scheme {
	case "unix", "npipe":
		return true
	case "tcp", "http", "https":
		h := u.Hostname()
		return h == "localhost" || h == "127.0.0.1" || h == "::1"
	}
	return false
}

// IsNotFound reports whether err says the object does not exist.
func IsNotFound(err error) bool { return cerrdefs.IsNotFound(err) }

// IsConflict reports whether err says the object is in use or already exists.
func IsConflict(err error) bool { return cerrdefs.IsConflict(err) }

func firstLine(err error) string {
	s := err.Error()
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}
