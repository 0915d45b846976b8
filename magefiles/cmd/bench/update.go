package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/migdrp/runpod/magefiles/testbase"
)

// liveWithin bounds the wait for an updated script to be served.
const liveWithin = 2 * time.Minute

// updateRound holds what one round of the update comparison measured.
type updateRound struct {
	toolSecs, toolBuildSecs               float64
	manualSecs, manualBuildSecs, stopSecs float64
	toolKept, manualKept                  int64
}

// measureUpdate compares a scripts-only update with 1 GiB of user data in the volume: the
// tool's update target against the documented sequence (stop, build, volume rm, run, first-run
// seeding). Each is timed until the app serves the changed script, then the user data still
// in the volume is counted.
func (b *bench) measureUpdate(ctx context.Context) ([]result, error) {
	logrus.Info("scripts-only update: starting both containers with 1 GiB of user data")
	if err := b.startBoth(ctx); err != nil {
		return nil, err
	}

	var rounds []updateRound
	for i := 1; i <= b.rounds; i++ {
		logrus.Infof("scripts-only update: round %d of %d", i, b.rounds)
		r, err := b.updateRound(ctx, fmt.Sprintf("bench round %d", i))
		if err != nil {
			return nil, err
		}
		rounds = append(rounds, r)
	}
	return updateResults(rounds), nil
}

// startBoth runs the tag with the tool and, apart, with the documented docker run, and puts
// 1 GiB of user data into each volume.
func (b *bench) startBoth(ctx context.Context) error {
	if _, err := b.command(ctx, b.repo, b.mage, "run:"+tagName); err != nil {
		return err
	}
	if err := b.buildManualBase(ctx); err != nil {
		return err
	}
	if _, err := b.command(ctx, b.repo, "docker", b.manualBuildArgs()...); err != nil {
		return err
	}
	b.remember(ctx)
	if _, err := b.command(ctx, b.repo, "docker", b.manualRunArgs()...); err != nil {
		return err
	}
	for _, v := range []string{b.names.Volume, b.manual.volume} {
		if err := b.writeUserData(ctx, v); err != nil {
			return err
		}
	}
	return nil
}

// buildManualBase copies the base image under a new ID with one label, so the manual
// sequence's builds start a layer cache of their own.
func (b *bench) buildManualBase(ctx context.Context) error {
	cmd := exec.CommandContext(ctx, "docker", "build", "-q", "-t", b.manual.base, "-")
	cmd.Env = b.env
	cmd.Stdin = strings.NewReader("FROM " + testbase.Busybox + "\n" +
		"LABEL io.github.migdrp.runpod.bench=manual\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("building %s: %v\n%s", b.manual.base, err, tail(out))
	}
	return nil
}

// manualBuildArgs is the documented docker build of the tag's folder, from the manual base.
func (b *bench) manualBuildArgs() []string {
	return []string{"build", "-t", b.manual.image, "--build-arg", "BASE_IMAGE=" + b.manual.base,
		tagDir}
}

// manualRunArgs is the documented docker run, detached, with the app's port on another host
// port than the tool's container.
func (b *bench) manualRunArgs() []string {
	return []string{"run", "-d", "--rm", "--name", b.manual.container,
		"--env-file", filepath.Join("envs", tagDir+".env"),
		"-p", fmt.Sprintf("127.0.0.1:%d:%d", b.manual.port, b.port),
		"-v", b.manual.volume + ":/workspace",
		"-v", filepath.Join(b.repo, tagDir, "workspace") + ":/workspace_template:ro",
		b.manual.image}
}

// updateRound commits a change to a script, then updates with the tool and by hand.
func (b *bench) updateRound(ctx context.Context, marker string) (updateRound, error) {
	var r updateRound
	if err := b.changeScript(ctx, marker); err != nil {
		return r, err
	}

	// The tool: one command.
	started := time.Now()
	out, err := b.command(ctx, b.repo, b.mage, "update:"+tagName)
	if err != nil {
		return r, err
	}
	b.remember(ctx)
	if r.toolBuildSecs, err = loggedBuildTime(out); err != nil {
		return r, err
	}
	if err := waitServed(ctx, b.port, "/start.sh", marker, liveWithin); err != nil {
		return r, fmt.Errorf("after update:%s: %w", tagName, err)
	}
	r.toolSecs = time.Since(started).Seconds()
	if r.toolKept, err = b.userDataBytes(ctx, b.names.Volume); err != nil {
		return r, err
	}

	// By hand: the documented sequence on a volume that holds the user data again.
	if err := b.refillUserData(ctx, b.manual.volume); err != nil {
		return r, err
	}
	started = time.Now()
	if r.stopSecs, r.manualBuildSecs, err = b.manualUpdate(ctx); err != nil {
		return r, err
	}
	if err := waitServed(ctx, b.manual.port, "/start.sh", marker, liveWithin); err != nil {
		return r, fmt.Errorf("after the manual sequence: %w", err)
	}
	r.manualSecs = time.Since(started).Seconds()
	b.remember(ctx)
	r.manualKept, err = b.userDataBytes(ctx, b.manual.volume)
	return r, err
}

// changeScript appends a comment holding marker to the tag's start script and commits it.
func (b *bench) changeScript(ctx context.Context, marker string) error {
	path := filepath.Join(b.repo, tagDir, "workspace", "start.sh")
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(f, "# %s\n", marker)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return b.commit(ctx, "Change the start script: "+marker)
}

// refillUserData writes the user data again where the manual sequence removed it.
func (b *bench) refillUserData(ctx context.Context, volume string) error {
	n, err := b.userDataBytes(ctx, volume)
	if err != nil || n >= userDataMiB<<20 {
		return err
	}
	return b.writeUserData(ctx, volume)
}

// manualUpdate runs the documented steps for changed scripts and returns how long docker stop
// and docker build took.
func (b *bench) manualUpdate(ctx context.Context) (stopSecs, buildSecs float64, err error) {
	started := time.Now()
	if _, err := b.command(ctx, b.repo, "docker", "stop", b.manual.container); err != nil {
		return 0, 0, err
	}
	stopSecs = time.Since(started).Seconds()
	started = time.Now()
	if _, err := b.command(ctx, b.repo, "docker", b.manualBuildArgs()...); err != nil {
		return 0, 0, err
	}
	buildSecs = time.Since(started).Seconds()
	if err := b.removeVolumeByHand(ctx); err != nil {
		return 0, 0, err
	}
	_, err = b.command(ctx, b.repo, "docker", b.manualRunArgs()...)
	return stopSecs, buildSecs, err
}

// builtIn is the tool's log line after a build: "built <image> (<id>) in 4.2s, context ...".
var builtIn = regexp.MustCompile(`built \S+ \(\w+\) in (\S+),`)

// loggedBuildTime reads how long the tool says its build took.
func loggedBuildTime(out []byte) (float64, error) {
	m := builtIn.FindSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("update:%s did not build, though a script changed:\n%s", tagName,
			tail(out))
	}
	d, err := time.ParseDuration(string(m[1]))
	return d.Seconds(), err
}

// removeVolumeByHand runs docker volume rm, trying again while the engine is still removing
// the stopped --rm container, as a user would.
func (b *bench) removeVolumeByHand(ctx context.Context) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, err := b.command(ctx, b.repo, "docker", "volume", "rm", b.manual.volume)
		if err == nil || !strings.Contains(string(out), "in use") ||
			time.Now().After(deadline) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// updateResults turns the rounds into the table's lines.
func updateResults(rounds []updateRound) []result {
	const what = "scripts-only update, 1 GiB user data"
	line := func(method, note string, u unit, value func(updateRound) float64) result {
		r := result{what: what, method: method, unit: u, note: note}
		for _, round := range rounds {
			r.values = append(r.values, value(round))
		}
		return r
	}
	written := "of " + strconv.Itoa(userDataMiB) + " MiB written"
	return []result{
		line("this tool: `mage update:bench`", "until the app serves the changed script",
			seconds, func(r updateRound) float64 { return r.toolSecs }),
		line("… of which its build", "as the tool logs it", seconds,
			func(r updateRound) float64 { return r.toolBuildSecs }),
		line("documented: stop, build, volume rm, run",
			"until the app serves the changed script (first-run seeding)", seconds,
			func(r updateRound) float64 { return r.manualSecs }),
		line("… of which `docker build`", "its own layer cache, apart from the tool's", seconds,
			func(r updateRound) float64 { return r.manualBuildSecs }),
		line("… of which `docker stop`", "waits 10 s: the fixture's PID 1 ignores SIGTERM "+
			"(the tool waits 3 s)", seconds, func(r updateRound) float64 { return r.stopSecs }),
		line("user data kept: this tool", written, byteCount,
			func(r updateRound) float64 { return float64(r.toolKept) }),
		line("user data kept: documented", written, byteCount,
			func(r updateRound) float64 { return float64(r.manualKept) }),
	}
}
