// Command bench measures the tool against the documented docker CLI workflow, side by side on
// one throwaway copy of the repository, and prints the results as a Markdown table:
//
//   - a build when nothing changed: the tool's build target vs `docker build` of the same tag;
//   - the bytes sent as build context: the tool vs `docker build -f runpod-<tag>/Dockerfile .`
//     at the repository root, with 1 GiB of unrelated files elsewhere in the repository;
//   - a scripts-only update with 1 GiB of user data in the volume: the tool's update target vs
//     the documented stop, build, volume rm, run sequence;
//   - warm `mage -l` and `go run mage.go -l`.
//
// Run it from anywhere inside the repository:
//
//	go run ./magefiles/cmd/bench -rounds 3
//
// It needs a local Docker Engine, the docker CLI, git and Go; it pulls nothing. The copy is a
// clone of the committed HEAD with a fixture tag, runpod-bench/, added from testdata/tags. All
// it creates (containers, volumes, images, temporary folders) is removed at the end unless
// -keep is given. Progress goes to stderr, the table to stdout.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"
)

func main() {
	rounds := flag.Int("rounds", 3, "how many times each measurement is repeated")
	keep := flag.Bool("keep", false, "leave the copy, containers, volumes and images in place")
	verbose := flag.Bool("v", false, "copy the output of every command to stderr")
	flag.Parse()
	logrus.SetOutput(os.Stderr)
	logrus.SetFormatter(&logrus.TextFormatter{DisableTimestamp: true})
	if *rounds < 1 {
		fmt.Fprintln(os.Stderr, "bench: -rounds must be at least 1")
		os.Exit(2)
	}

	// Ctrl-C stops the running command; the clean-up still runs.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *rounds, *keep, *verbose); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// run sets the copy up, takes every measurement and prints the report.
func run(ctx context.Context, rounds int, keep, verbose bool) (err error) {
	started := time.Now()
	b, err := setUp(ctx, rounds, verbose)
	if err != nil {
		return err
	}
	defer func() {
		if keep {
			b.describeLeftovers()
			return
		}
		if cerr := b.tearDown(); cerr != nil && err == nil {
			err = cerr
		}
	}()

	var results []result
	for _, measure := range []func(context.Context) ([]result, error){
		b.measureBuild, b.measureContext, b.measureUpdate, b.measureList,
	} {
		rs, err := measure(ctx)
		if err != nil {
			return err
		}
		results = append(results, rs...)
	}

	m, err := b.machine(ctx)
	if err != nil {
		return err
	}
	fmt.Print(report(m, rounds, results, time.Since(started)))
	return nil
}
