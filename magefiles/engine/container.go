package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"regexp"
	"sort"

	"strings"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
)

// RunSpec describes the container of a tag.
type RunSpec struct {
	Name        string
	Image       string
	Volume      string // named volume mounted at /workspace
	TemplateDir string // host folder mounted read-only at /workspace_template; "" for none
	Env         []string
	BindAddress string         // host address every port is published on
	Ports       []network.Port // published on the same host port; usually the image's EXPOSE
	GPUs        bool           // request every GPU, like docker run --gpus all
	Labels      map[string]string
	AutoRemove  bool // remove the container when it exits, like docker run --rm
}

// ContainerState is what the engine knows of a container by name.
type ContainerState struct {
	Exists  bool
	Running bool
	ID      string
	Status  string // running, exited, created, ...
	Labels  map[string]string
	Ports   []string // published ports as host:port->container/proto
	Started time.Time
}

// StopTimeout is how long a container gets to exit after SIGTERM. Mage allows about five
// seconds of clean-up after Ctrl-C, so the stop must fit in that window.
const StopTimeout = 3 * time.Second

// Inspect returns the state of the container called name; Exists is false when there is none.
func (e *Engine) Inspect(ctx context.Context, name string) (ContainerState, error) {
	res, err := e.API.ContainerInspect(ctx, name, client.ContainerInspectOptions{})
	if IsNotFound(err) {
		return ContainerState{}, nil
	}
	if err != nil {
		return ContainerState{}, fmt.Errorf("inspecting container %s: %w", name, err)
	}
	c := res.Container
	st := ContainerState{Exists: true, ID: c.ID}
	if c.State != nil {
		st.Running = c.State.Running
		st.Status = string(c.State.Status)
		st.Started, _ = time.Parse(time.RFC3339Nano, c.State.StartedAt)
	}
	if c.Config != nil {
		st.Labels = c.Config.Labels
	}
	if c.NetworkSettings != nil {
		for port, bindings := range c.NetworkSettings.Ports {
			for _, b := range bindings {
				st.Ports = append(st.Ports, net.JoinHostPort(b.HostIP.String(), b.HostPort)+
					"->"+port.String())
			}
		}
		sort.Strings(st.Ports)
	}
	return st, nil
}

// ExposedPorts lists the ports an image declares with EXPOSE, in numeric order.
func (e *Engine) ExposedPorts(ctx context.Context, image string) ([]network.Port, error) {
	res, err := e.API.ImageInspect(ctx, image)
	if err != nil {
		return nil, fmt.Errorf("inspecting image %s: %w", image, err)
	}
	var ports []network.Port
	if res.Config != nil {
		for p := range res.Config.ExposedPorts {
			port, err := network.ParsePort(p)
			if err != nil {
				return nil, fmt.Errorf("image %s exposes %q: %w", image, p, err)
			}
			ports = append(ports, port)
		}
	}
	sort.Slice(ports, func(i, j int) bool { return ports[i].Num() < ports[j].Num() })
	return ports, nil
}

// HasNvidiaRuntime tells whether the engine can hand GPUs to containers.
func (e *Engine) HasNvidiaRuntime(ctx context.Context) (bool, error) {
	info, err := e.API.Info(ctx, client.InfoOptions{})
	if err != nil {
		return false, fmt.Errorf("asking the engine for its runtimes: %w", err)
	}
	_, ok := info.Info.Runtimes["nvidia"]
	return ok, nil
}

// CheckPortsFree fails with the first port of ports that something on this machine already
// listens on at addr. Only meaningful for a local engine.
func CheckPortsFree(addr string, ports []network.Port) error {
	for _, p := range ports {
		if p.Proto() != network.TCP {
			continue
		}
		l, err := net.Listen("tcp", net.JoinHostPort(addr, p.Port()))
		if err != nil {
			return fmt.Errorf("host port %s on %s is already taken; stop what uses it or set "+
				"BIND_ADDRESS to another address", p.Port(), addr)
		}
		_ = l.Close()
	}
	return nil
}

// Create makes the container of spec, replacing a stopped container of the same name. A
// running one is left alone and reported as a conflict.
func (e *Engine) Create(ctx context.Context, spec RunSpec) (string, error) {
	st, err := e.Inspect(ctx, spec.Name)
	if err != nil {
		return "", err
	}
	if st.Running {
		return "", fmt.Errorf("%w: container %s is already running", ErrRunning, spec.Name)
	}
	if st.Exists {
		if err := e.Remove(ctx, spec.Name); err != nil {
			return "", err
		}
	}

	hostIP, err := netip.ParseAddr(spec.BindAddress)
	if err != nil {
		return "", fmt.Errorf("BIND_ADDRESS %q is not an IP address", spec.BindAddress)
	}
	exposed := network.PortSet{}
	bindings := network.PortMap{}
	for _, p := range spec.Ports {
		exposed[p] = struct{}{}
		bindings[p] = []network.PortBinding{{HostIP: hostIP, HostPort: p.Port()}}
	}

	mounts := []mount.Mount{{Type: mount.TypeVolume, Source: spec.Volume, Target: "/workspace"}}
	if spec.TemplateDir != "" {
		mounts = append(mounts, mount.Mount{Type: mount.TypeBind, Source: spec.TemplateDir,
			Target: "/workspace_template", ReadOnly: true})
	}
	host := &container.HostConfig{
		PortBindings: bindings,
		Mounts:       mounts,
		AutoRemove:   spec.AutoRemove,
	}
	if spec.GPUs {
		host.DeviceRequests = []container.DeviceRequest{{Count: -1,
			Capabilities: [][]string{{"gpu"}}}}
	}
	res, err := e.API.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name: spec.Name,
		Config: &container.Config{
			Image:        spec.Image,
			Env:          spec.Env,
			Labels:       spec.Labels,
			ExposedPorts: exposed,
		},
		HostConfig: host,
	})
	if err != nil {
		if IsConflict(err) {
			return "", fmt.Errorf("%w: container name %s is taken", ErrRunning, spec.Name)
		}
		return "", fmt.Errorf("creating container %s: %w", spec.Name, err)
	}
	return res.ID, nil
}

// ErrRunning marks a container that is already running under the name a target wants.
var ErrRunning = errors.New("container already running")

// Start starts a created container, turning the engine's port clash into one clear line.
func (e *Engine) Start(ctx context.Context, id string) error {
	if _, err := e.API.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
		if port := takenPort(err); port != "" {
			return fmt.Errorf("host port %s is already taken; stop what uses it or set "+
				"BIND_ADDRESS to another address", port)
		}
		return fmt.Errorf("starting container: %s", oneLine(err))
	}
	return nil
}

var portInError = regexp.MustCompile(`(?:0\.0\.0\.0|127\.\d+\.\d+\.\d+|[\d.]+|\[[^\]]*\]):(\d+)`)

func takenPort(err error) string {
	msg := err.Error()
	if !strings.Contains(msg, "port is already allocated") &&
		!strings.Contains(msg, "address already in use") {
		return ""
	}
	if m := portInError.FindStringSubmatch(msg); m != nil {
		return m[1]
	}
	return "?"
}

// Stop stops the container called name within StopTimeout; a missing or stopped container is
// already done.
func (e *Engine) Stop(ctx context.Context, name string) error {
	secs := int(StopTimeout / time.Second)
	_, err := e.API.ContainerStop(ctx, name, client.ContainerStopOptions{Timeout: &secs})
	if err != nil && !IsNotFound(err) {
		return fmt.Errorf("stopping container %s: %w", name, err)
	}
	return nil
}

// Remove removes the container called name, stopping it first; not found is already done.
func (e *Engine) Remove(ctx context.Context, name string) error {
	_, err := e.API.ContainerRemove(ctx, name, client.ContainerRemoveOptions{Force: true})
	if err != nil && !IsNotFound(err) && !strings.Contains(err.Error(), "already in progress") {
		return fmt.Errorf("removing container %s: %w", name, err)
	}
	return nil
}

// RunForeground attaches to a created container, starts it and streams its output until it
// exits or ctx is cancelled; on cancel it stops the container with a fresh, short context,
// because the caller's context is already done.
func (e *Engine) RunForeground(ctx context.Context, id string, stdout, stderr io.Writer) (
	int, error) {
	att, err := e.API.ContainerAttach(ctx, id, client.ContainerAttachOptions{
		Stream: true, Stdout: true, Stderr: true})
	if err != nil {
		return 0, fmt.Errorf("attaching to container: %w", err)
	}
	defer att.HijackedResponse.Close()
	wait := e.API.ContainerWait(context.WithoutCancel(ctx), id,
		client.ContainerWaitOptions{Condition: container.WaitConditionNextExit})
	if err := e.Start(ctx, id); err != nil {
		return 0, err
	}
	copied := make(chan error, 1)
	go func() {
		_, err := stdcopy.StdCopy(stdout, stderr, att.HijackedResponse.Reader)
		copied <- err
	}()

	select {
	case <-ctx.Done():
		cleanup, cancel := context.WithTimeout(context.Background(), StopTimeout+time.Second)
		defer cancel()
		_ = e.Stop(cleanup, id)
		return 0, ctx.Err()
	case err := <-wait.Error:
		return 0, fmt.Errorf("waiting for container: %w", err)
	case res := <-wait.Result:
		// Let the last lines of output arrive before returning.
		select {
		case <-copied:
		case <-time.After(2 * time.Second):
		}
		if res.Error != nil {
			return int(res.StatusCode), errors.New(res.Error.Message)
		}
		return int(res.StatusCode), nil
	}
}

// Logs streams the output of the container called name; with follow it goes on until the
// container stops or ctx is cancelled.
func (e *Engine) Logs(ctx context.Context, name string, follow bool, tail string,
	stdout, stderr io.Writer) error {
	res, err := e.API.ContainerLogs(ctx, name, client.ContainerLogsOptions{
		ShowStdout: true, ShowStderr: true, Follow: follow, Tail: tail})
	if err != nil {
		return fmt.Errorf("reading logs of %s: %w", name, err)
	}
	defer res.Close()
	if _, err := stdcopy.StdCopy(stdout, stderr, res); err != nil && ctx.Err() == nil {
		return fmt.Errorf("reading logs of %s: %w", name, err)
	}
	return nil
}

// WaitRunning waits until the container is running or has exited; a container that exits
// within the first moments is reported with its exit code.
func (e *Engine) WaitRunning(ctx context.Context, name string, settle time.Duration) error {
	deadline := time.Now().Add(settle)
	for {
		res, err := e.API.ContainerInspect(ctx, name, client.ContainerInspectOptions{})
		if err != nil {
			return fmt.Errorf("inspecting container %s: %w", name, err)
		}
		s := res.Container.State
		if s != nil && !s.Running && s.Status != container.StateCreated {
			return fmt.Errorf("container %s exited with code %d right after starting; see "+
				"its logs", name, s.ExitCode)
		}
		if time.Now().After(deadline) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// ImageInfo is what the status and build targets need to know of an image.
type ImageInfo struct {
	Exists  bool
	ID      string
	Created time.Time
	Labels  map[string]string
}

// Image inspects image; Exists is false when the engine does not have it.
func (e *Engine) Image(ctx context.Context, image string) (ImageInfo, error) {
	res, err := e.API.ImageInspect(ctx, image)
	if IsNotFound(err) {
		return ImageInfo{}, nil
	}
	if err != nil {
		return ImageInfo{}, fmt.Errorf("inspecting image %s: %w", image, err)
	}
	info := ImageInfo{Exists: true, ID: res.ID}
	info.Created, _ = time.Parse(time.RFC3339Nano, res.Created)
	if res.Config != nil {
		info.Labels = res.Config.Labels
	}
	return info, nil
}

// RemoveImage removes image; not found is already done.
func (e *Engine) RemoveImage(ctx context.Context, image string) error {
	_, err := e.API.ImageRemove(ctx, image, client.ImageRemoveOptions{PruneChildren: true})
	if err != nil && !IsNotFound(err) {
		return fmt.Errorf("removing image %s: %w", image, err)
	}
	return nil
}

// Restart stops and starts the container called name within StopTimeout.
func (e *Engine) Restart(ctx context.Context, name string) error {
	secs := int(StopTimeout / time.Second)
	_, err := e.API.ContainerRestart(ctx, name, client.ContainerRestartOptions{Timeout: &secs})
	if err != nil {
		return fmt.Errorf("restarting container %s: %w", name, err)
	}
	return nil
}
