package gen

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/migdrp/runpod/magefiles/tags"
)

// TestGeneratedTargetsMatchTagDirectories fails when a runpod-<tag>/ directory was added or
// removed without regenerating the targets.
func TestGeneratedTargetsMatchTagDirectories(t *testing.T) {
	wd, _ := os.Getwd()
	root, err := tags.Root(wd)
	if err != nil {
		t.Fatal(err)
	}
	all, err := tags.Discover(root)
	if err != nil {
		t.Fatal(err)
	}
	want, err := Render(all)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(root, File))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s is stale: run `mage generate` (or go generate ./...)", File)
	}
}

// TestNewTagDirectoryGetsEveryVerb: adding runpod-foo/ and generating gives build:foo,
// run:foo, ... with no hand edits.
func TestNewTagDirectoryGetsEveryVerb(t *testing.T) {
	src, err := Render([]tags.Tag{{Name: "foo"}})
	if err != nil {
		t.Fatal(err)
	}
	text := string(src)
	if !strings.HasPrefix(text, "// Code generated") || !strings.Contains(text, "DO NOT EDIT") {
		t.Error("the file does not say it is generated")
	}
	for _, v := range verbs {
		if !strings.Contains(text, "func ("+v.Namespace+") Foo(ctx context.Context") {
			t.Errorf("no %s target for foo", v.Namespace)
		}
	}
	if !strings.Contains(text, "Environment: IMAGE_REPO") {
		t.Error("targets do not list the environment they read")
	}
}
