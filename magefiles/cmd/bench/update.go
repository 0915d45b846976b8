package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/sirupsen/logrus"
)

// liveWithin bounds the wait for an updated script to be served.
const liveWithin = 2 * time.Minute

// updateRound holds what one round of the update comparison measured.
type updateRound struct {
	toolSecs, manualSecs, stopSecs float64
	toolKept, manualKept           int64
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
	if _, err := b.command(ctx, b.repo, "docker", "build", "-t", b.manual.image,
		tagDir); err != nil {
		return err
	}
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
	if _, err := b.command(ctx, b.repo, b.mage, "update:"+tagName); err != nil {
		return r, err
	}
	if err := waitServed(ctx, b.port, "/start.sh", marker, liveWithin); err != nil {
		return r, fmt.Errorf("after update:%s: %w", tagName, err)
	}
	r.toolSecs = time.Since(started).Seconds()
	var err error
	if r.toolKept, err = b.userDataBytes(ctx, b.names.Volume); err != nil {
		return r, err
	}

	// By hand: the documented sequence on a volume that holds the user data again.
	if err := b.refillUserData(ctx, b.manual.volume); err != nil {
		return r, err
	}
	started = time.Now()
	if r.stopSecs, err = b.manualUpdate(ctx); err != nil {
		return r, err
	}
	if err := waitServed(ctx, b.manual.port, "/start.sh", marker, liveWithin); err != nil {
		return r, fmt.Errorf("after the manual sequence: %w", err)
	}
	r.manualSecs = time.Since(started).Seconds()
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

// manualUpdate runs the documented steps for changed scripts and returns the time docker stop
// took, which the image's signal handling decides.
func (b *bench) manualUpdate(ctx context.Context) (float64, error) {
	started := time.Now()
	if _, err := b.command(ctx, b.repo, "docker", "stop", b.manual.container); err != nil {
		return 0, err
	}
	stopSecs := time.Since(started).Seconds()
	if _, err := b.command(ctx, b.repo, "docker", "build", "-t", b.manual.image,
		tagDir); err != nil {
		return 0, err
	}
	if err := b.removeVolumeByHand(ctx); err != nil {
		return 0, err
	}
	_, err := b.command(ctx, b.repo, "docker", b.manualRunArgs()...)
	return stopSecs, err
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
	tool := result{what: what, method: "this tool: `mage update:bench`", unit: seconds,
		note: "until the app serves the changed script"}
	manual := result{what: what, method: "documented: stop, build, volume rm, run", unit: seconds,
		note: "until the app serves the changed script (first-run seeding)"}
	stop := result{what: what, method: "… of which `docker stop`", unit: seconds,
		note: "10 s grace: the fixture's PID 1 ignores SIGTERM"}
	toolKept := result{what: what, method: "user data kept: this tool", unit: bytesSent}
	manualKept := result{what: what, method: "user data kept: documented", unit: bytesSent}
	for _, r := range rounds {
		tool.values = append(tool.values, r.toolSecs)
		manual.values = append(manual.values, r.manualSecs)
		stop.values = append(stop.values, r.stopSecs)
		toolKept.values = append(toolKept.values, float64(r.toolKept))
		manualKept.values = append(manualKept.values, float64(r.manualKept))
	}
	toolKept.note = "of " + strconv.Itoa(userDataMiB) + " MiB written"
	manualKept.note = toolKept.note
	return []result{tool, manual, stop, toolKept, manualKept}
}
