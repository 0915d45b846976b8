//go:build mage

// Builds, runs, updates and publishes the RunPod GPU images, with one set of targets per
// runpod-<tag>/ directory. Settings come from environment variables: mage -h <target> names
// them, README.md explains them.
package main

// The targets live in an ordinary package, magefiles/targets, so that go test reaches them;
// this file only pulls them in.

import (
	//mage:import
	_ "github.com/migdrp/runpod/magefiles/targets"
)
