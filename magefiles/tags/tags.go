// Package tags finds the image tags of the repository (one directory runpod-<tag>/ holding a
// Dockerfile each) and derives the names Docker knows them by.
package tags

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// DirPrefix starts the name of every tag directory.
const DirPrefix = "runpod-"

// DefaultImageRepo is the image repository of the documented workflow.
const DefaultImageRepo = "migdrp/runpod"

// Reserved names are taken by fixed targets or arguments (mage all, update:scripts, ...), so a
// tag of that name would produce a target that collides with them or reads ambiguously.
var Reserved = []string{"all", "scripts", "matrix", "status", "generate", "base", "help", "list"}

// A tag names an image tag, a container, a volume and a Mage target (build:<tag>). Mage target
// names are Go method names, which allow no hyphen, so a tag is lowercase letters and digits.
var validName = regexp.MustCompile(`^[a-z][a-z0-9]*$`)

// Tag is one image tag and the directory it is built from.
type Tag struct {
	Name string // comfyui
	Dir  string // absolute path of runpod-comfyui
}

// Validate says why name cannot be a tag, or returns nil.
func Validate(name string) error {
	if len(name) > 64 {
		return fmt.Errorf("tag %q is longer than 64 characters", name)
	}
	if !validName.MatchString(name) {
		return fmt.Errorf("tag %q must be a lowercase letter followed by lowercase letters or "+
			"digits: it names an image tag, a container, a volume and Mage targets such as "+
			"build:<tag>", name)
	}
	for _, r := range Reserved {
		if name == r {
			return fmt.Errorf("tag %q collides with a fixed target name; rename %s%s", name,
				DirPrefix, name)
		}
	}
	return nil
}

// Discover lists the tags under root in name order. A runpod-* directory without a Dockerfile
// is not a tag; one with a Dockerfile but an invalid name is an error naming the directory.
func Discover(root string) ([]Tag, error) {
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("listing tag directories: %w", err)
	}
	var found []Tag
	var problems []error
	for _, e := range entries {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), DirPrefix) {
			continue
		}
		dir := filepath.Join(root, e.Name())
		if _, err := os.Stat(filepath.Join(dir, "Dockerfile")); err != nil {
			continue
		}
		name := strings.TrimPrefix(e.Name(), DirPrefix)
		if err := Validate(name); err != nil {
			problems = append(problems, fmt.Errorf("directory %s: %w", e.Name(), err))
			continue
		}
		found = append(found, Tag{Name: name, Dir: dir})
	}
	if len(problems) > 0 {
		return nil, errors.Join(problems...)
	}
	sort.Slice(found, func(i, j int) bool { return found[i].Name < found[j].Name })
	return found, nil
}

// Find returns the tag called name, or an error listing the known tags.
func Find(root, name string) (Tag, error) {
	all, err := Discover(root)
	if err != nil {
		return Tag{}, err
	}
	for _, t := range all {
		if t.Name == name {
			return t, nil
		}
	}
	names := make([]string, len(all))
	for i, t := range all {
		names[i] = t.Name
	}
	return Tag{}, fmt.Errorf("unknown tag %q: known tags are %s (each is a directory %s<tag>/ "+
		"with a Dockerfile)", name, strings.Join(names, ", "), DirPrefix)
}

// Names are what Docker calls the image, container and volume of a tag.
type Names struct {
	Image     string // migdrp/runpod:comfyui
	Container string // migdrp-runpod-comfyui
	Volume    string // comfyui_workspace
}

// NamesFor derives the names of tag under imageRepo (DefaultImageRepo when empty).
func NamesFor(imageRepo, tag string) Names {
	if imageRepo == "" {
		imageRepo = DefaultImageRepo
	}
	return Names{
		Image:     imageRepo + ":" + tag,
		Container: ContainerBase(imageRepo) + "-" + tag,
		Volume:    tag + "_workspace",
	}
}

// ContainerBase turns an image repository into the prefix of container names: the registry
// host's port colon and every slash become hyphens (localhost:5000/a/b -> localhost-5000-a-b).
func ContainerBase(imageRepo string) string {
	return strings.NewReplacer("/", "-", ":", "-").Replace(imageRepo)
}

// Root finds the repository root from dir: the nearest directory upwards holding go.mod and
// magefiles/.
func Root(dir string) (string, error) {
	d, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for {
		if isFile(filepath.Join(d, "go.mod")) && isDir(filepath.Join(d, "magefiles")) {
			return d, nil
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", fmt.Errorf("no repository root (go.mod beside magefiles/) above %s", dir)
		}
		d = parent
	}
}

func isFile(p string) bool { st, err := os.Stat(p); return err == nil && !st.IsDir() }
func isDir(p string) bool  { st, err := os.Stat(p); return err == nil && st.IsDir() }
