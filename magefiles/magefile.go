//go:build mage

// The targets live in an ordinary package so that go test reaches them; this file only pulls
// them in. Run `mage -l` for the menu.
package main

import (
	//mage:import
	_ "github.com/migdrp/runpod/magefiles/targets"
)
