// Command runpod-workspace brings a workspace in step with its template at container start,
// keeping every file the user changed. It is built static and copied into each image:
//
//	runpod-workspace sync [--json] TEMPLATE WORKSPACE
//
// It prints a one-line summary and one line per file to look at (conflicts, kept files that
// left the template). With --json the last line on stdout is the summary as JSON and the
// human lines go to stderr. It exits 0 on success, 1 when the sync failed, 2 on bad usage.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/migdrp/runpod/magefiles/workspace/dirsync"
	"github.com/sirupsen/logrus"
)

const usage = "usage: runpod-workspace sync [--json] TEMPLATE WORKSPACE"

func main() {
	logrus.SetOutput(os.Stderr)
	logrus.SetFormatter(&logrus.TextFormatter{DisableTimestamp: true})
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "sync" {
		fmt.Fprintln(stderr, usage)
		return 2
	}
	flags := flag.NewFlagSet("sync", flag.ContinueOnError)
	flags.SetOutput(stderr)
	jsonOut := flags.Bool("json", false, "print the summary as a JSON line on stdout")
	if err := flags.Parse(args[1:]); err != nil || flags.NArg() != 2 {
		fmt.Fprintln(stderr, usage)
		return 2
	}

	sum, err := dirsync.Sync(flags.Arg(0), flags.Arg(1))
	if err != nil {
		fmt.Fprintf(stderr, "runpod-workspace: syncing %s into %s: %v\n", flags.Arg(0),
			flags.Arg(1), err)
		return 1
	}

	report := stdout
	if *jsonOut {
		report = stderr
	}
	fmt.Fprintf(report, "workspace sync: %s\n", sum)
	for _, line := range sum.Details() {
		fmt.Fprintln(report, line)
	}
	if *jsonOut {
		raw, err := json.Marshal(sum)
		if err != nil {
			fmt.Fprintf(stderr, "runpod-workspace: encoding summary: %v\n", err)
			return 1
		}
		fmt.Fprintf(stdout, "%s\n", raw)
	}
	return 0
}
