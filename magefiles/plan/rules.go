package plan

import (
	"strings"

	"github.com/migdrp/runpod/magefiles/changes"
)

// Build says whether and how the image is built.
type Build int

// Build modes, weakest first.
const (
	BuildSkip    Build = iota // the image is current
	BuildCache                // docker build
	BuildNoCache              // docker build --no-cache
)

// Volume says what happens to the tag's workspace volume.
type Volume int

// Volume actions, weakest first.
const (
	VolumeKeep  Volume = iota // left as it is
	VolumeSync                // kept; the template's scripts are synced into it
	VolumeReset               // backed up, then removed (and seeded anew)
)

// Container says what happens to the tag's container.
type Container int

// Container actions, weakest first.
const (
	ContainerKeep     Container = iota // left running, or started if stopped
	ContainerRecreate                  // replaced by a new one from the current image
	ContainerCreate                    // a first one is created
)

// Trigger is what changed since the image was built: the left column of the rules.
type Trigger int

// The triggers, in the order of the rules table.
const (
	Nothing Trigger = iota
	EnvOnly
	Scripts
	OtherFiles
	DockerfileOrSupervisord
	NoImage
	Unknown
)

// Rule is one row of the rules table: what a change leads to, with the words the README uses.
type Rule struct {
	Trigger   Trigger
	Build     Build
	Volume    Volume
	Container Container
	// Cells of the table, in Markdown.
	Changed, BuildCell, VolumeCell, ContainerCell string
}

// Rules is the table that decides an update. When several rows apply, each column takes the
// strongest of them. The README shows the same table (see Markdown).
var Rules = []Rule{
	{Nothing, BuildSkip, VolumeKeep, ContainerKeep,
		"nothing", "skip: the image is current", "keep", "keep (start it if stopped)"},
	{EnvOnly, BuildSkip, VolumeKeep, ContainerRecreate,
		"env file only", "skip", "keep", "recreate"},
	{Scripts, BuildCache, VolumeSync, ContainerRecreate,
		"`workspace/` scripts", "build with cache", "keep, sync the scripts into it (below)",
		"recreate"},
	{OtherFiles, BuildCache, VolumeKeep, ContainerRecreate,
		"other files copied into the image", "build with cache", "keep", "recreate"},
	{DockerfileOrSupervisord, BuildNoCache, VolumeReset, ContainerRecreate,
		"`Dockerfile` or `supervisord.conf`", "build with `--no-cache`",
		"reset: backup, then remove", "recreate"},
	{NoImage, BuildCache, VolumeKeep, ContainerCreate,
		"no image yet", "build", "keep (the first run seeds it)", "create"},
	{Unknown, BuildCache, VolumeKeep, ContainerRecreate,
		"cannot tell (an image without this tool's labels)", "build with cache", "keep",
		"recreate"},
}

// rule returns the row of a trigger.
func rule(t Trigger) Rule {
	for _, r := range Rules {
		if r.Trigger == t {
			return r
		}
	}
	return Rules[0]
}

// Triggers lists the rows that apply to ch, in table order.
func Triggers(ch changes.Changes, imageExists bool) []Trigger {
	if ch.Method == changes.NoImage || !imageExists {
		return []Trigger{NoImage}
	}
	var ts []Trigger
	if ch.Env {
		ts = append(ts, EnvOnly)
	}
	if ch.Changed(changes.Workspace) {
		ts = append(ts, Scripts)
	}
	if ch.Changed(changes.Other) {
		ts = append(ts, OtherFiles)
	}
	if ch.Changed(changes.Dockerfile) || ch.Changed(changes.Supervisord) {
		ts = append(ts, DockerfileOrSupervisord)
	}
	if ch.Unknown {
		ts = append(ts, Unknown)
	}
	if len(ts) == 0 {
		ts = append(ts, Nothing)
	}
	return ts
}

// Markdown renders the rules table as the README shows it.
func Markdown() string {
	var b strings.Builder
	b.WriteString("| changed since the image was built | build | volume | container |\n")
	b.WriteString("|---|---|---|---|\n")
	for _, r := range Rules {
		b.WriteString("| " + strings.Join([]string{r.Changed, r.BuildCell, r.VolumeCell,
			r.ContainerCell}, " | ") + " |\n")
	}
	return b.String()
}
