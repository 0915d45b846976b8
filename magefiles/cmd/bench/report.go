package main

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/moby/moby/client"
)

// unit says how a result's values read.
type unit int

const (
	seconds unit = iota
	byteCount
)

// result is one line of the table: what was measured, by which method, one value per round.
type result struct {
	what   string
	method string
	unit   unit
	values []float64
	note   string
}

// spread returns the median, minimum and maximum of the values.
func (r result) spread() (median, lo, hi float64) {
	v := append([]float64(nil), r.values...)
	sort.Float64s(v)
	n := len(v)
	if n == 0 {
		return 0, 0, 0
	}
	median = v[n/2]
	if n%2 == 0 {
		median = (v[n/2-1] + v[n/2]) / 2
	}
	return median, v[0], v[n-1]
}

func (r result) format(v float64) string {
	if r.unit == byteCount {
		return humanBytes(v)
	}
	return fmt.Sprintf("%.2f s", v)
}

// machine describes where the figures were taken.
type machine struct {
	date, cpus, memory, docker, goVersion, revision string
}

func (b *bench) machine(ctx context.Context) (machine, error) {
	v, err := b.eng.API.ServerVersion(ctx, client.ServerVersionOptions{})
	if err != nil {
		return machine{}, fmt.Errorf("asking the engine its version: %w", err)
	}
	rev, err := b.command(ctx, b.source, "git", "rev-parse", "--short", "HEAD")
	if err != nil {
		return machine{}, err
	}
	return machine{
		date:      time.Now().UTC().Format("2006-01-02 15:04 MST"),
		cpus:      fmt.Sprint(runtime.NumCPU()),
		memory:    memTotal(),
		docker:    fmt.Sprintf("Docker Engine %s (API %s)", v.Version, v.APIVersion),
		goVersion: runtime.Version(),
		revision:  strings.TrimSpace(string(rev)),
	}, nil
}

// memTotal reads the machine's memory from /proc/meminfo, "unknown" elsewhere.
func memTotal() string {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return "unknown"
	}
	var kb float64
	for _, line := range strings.Split(string(b), "\n") {
		if _, err := fmt.Sscanf(line, "MemTotal: %f kB", &kb); err == nil {
			return humanBytes(kb * 1024)
		}
	}
	return "unknown"
}

// report renders the machine and the results as Markdown.
func report(m machine, rounds int, results []result, took time.Duration) string {
	var s strings.Builder
	fmt.Fprintf(&s, "Measured %s on %s CPUs, %s memory, %s, %s, revision %s; %d rounds, "+
		"%s in all.\n\n", m.date, m.cpus, m.memory, m.docker, m.goVersion, m.revision,
		rounds, took.Round(time.Second))
	s.WriteString("| measurement | method | median | min | max | notes |\n")
	s.WriteString("|---|---|---:|---:|---:|---|\n")
	for _, r := range results {
		med, lo, hi := r.spread()
		fmt.Fprintf(&s, "| %s | %s | %s | %s | %s | %s |\n", r.what, r.method,
			r.format(med), r.format(lo), r.format(hi), r.note)
	}
	return s.String()
}

// humanBytes prints a byte count in binary units with the exact figure for small ones.
func humanBytes(n float64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", n/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", n/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB (%.0f B)", n/(1<<10), n)
	}
	return fmt.Sprintf("%.0f B", n)
}
