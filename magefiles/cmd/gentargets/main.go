// Command gentargets writes magefiles/targets/tags_gen.go from the runpod-<tag>/ directories.
// `go generate ./...` and `mage generate` run it.
package main

import (
	"fmt"
	"os"

	"github.com/migdrp/runpod/magefiles/gen"
	"github.com/migdrp/runpod/magefiles/tags"
)

func main() {
	wd, err := os.Getwd()
	if err == nil {
		var root string
		if root, err = tags.Root(wd); err == nil {
			_, err = gen.Write(root)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gentargets:", err)
		os.Exit(1)
	}
}
