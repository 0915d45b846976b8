package main

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/client"

	"github.com/migdrp/runpod/magefiles/testbase"
)

const (
	// userDataDir is where the benchmark puts what stands for a user's models and outputs.
	userDataDir = "userdata"
	// userDataMiB is its size: 1 GiB.
	userDataMiB = 1024
)

// writeUserData fills the volume's userdata/ folder with 1 GiB, as a user's downloads would.
func (b *bench) writeUserData(ctx context.Context, volume string) error {
	script := fmt.Sprintf("mkdir -p /w/%[1]s && dd if=/dev/zero of=/w/%[1]s/model.bin "+
		"bs=1048576 count=%[2]d 2>/dev/null && sync", userDataDir, userDataMiB)
	_, err := b.inVolume(ctx, volume, script)
	return err
}

// userDataBytes sums the sizes of the files under the volume's userdata/ folder; 0 when the
// folder is gone.
func (b *bench) userDataBytes(ctx context.Context, volume string) (int64, error) {
	script := fmt.Sprintf("if [ -d /w/%[1]s ]; then find /w/%[1]s -type f -exec stat -c %%s "+
		"{} +; fi", userDataDir)
	out, err := b.inVolume(ctx, volume, script)
	if err != nil {
		return 0, err
	}
	var total int64
	for _, field := range strings.Fields(out) {
		n, err := strconv.ParseInt(field, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("reading sizes in volume %s: %q", volume, field)
		}
		total += n
	}
	return total, nil
}

// inVolume runs a shell script in a throwaway busybox container with the volume at /w and
// returns its standard output.
func (b *bench) inVolume(ctx context.Context, volume, script string) (string, error) {
	api := b.eng.API
	res, err := api.ContainerCreate(ctx, client.ContainerCreateOptions{
		Config: &container.Config{Image: testbase.Busybox,
			Cmd: []string{"/bin/sh", "-c", script}, NetworkDisabled: true},
		HostConfig: &container.HostConfig{NetworkMode: "none", Mounts: []mount.Mount{{
			Type: mount.TypeVolume, Source: volume, Target: "/w"}}},
	})
	if err != nil {
		return "", fmt.Errorf("creating a container on volume %s: %w", volume, err)
	}
	defer func() {
		rctx := context.WithoutCancel(ctx)
		_, _ = api.ContainerRemove(rctx, res.ID, client.ContainerRemoveOptions{Force: true})
	}()

	// Run it to the end, then read what it printed.
	wait := api.ContainerWait(ctx, res.ID, client.ContainerWaitOptions{
		Condition: container.WaitConditionNextExit})
	if _, err := api.ContainerStart(ctx, res.ID, client.ContainerStartOptions{}); err != nil {
		return "", fmt.Errorf("starting a container on volume %s: %w", volume, err)
	}
	var code int64
	select {
	case r := <-wait.Result:
		code = r.StatusCode
	case err := <-wait.Error:
		return "", fmt.Errorf("waiting for a container on volume %s: %w", volume, err)
	}
	logs, err := api.ContainerLogs(ctx, res.ID, client.ContainerLogsOptions{ShowStdout: true,
		ShowStderr: true})
	if err != nil {
		return "", err
	}
	defer logs.Close()
	var stdout, stderr bytes.Buffer
	if _, err := stdcopy.StdCopy(&stdout, &stderr, logs); err != nil {
		return "", err
	}
	if code != 0 {
		return "", fmt.Errorf("script on volume %s exited with %d: %s", volume, code,
			strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}
