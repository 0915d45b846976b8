package tags

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	for name, ok := range map[string]bool{
		"comfyui": true, "fluxgym": true, "sd3": true,
		"": false, "ComfyUI": false, "my-tag": false, "my_tag": false, "3d": false,
		"all": false, "scripts": false, strings.Repeat("a", 65): false,
	} {
		err := Validate(name)
		if (err == nil) != ok {
			t.Errorf("Validate(%q) = %v, want ok=%v", name, err, ok)
		}
	}
	if err := Validate("all"); err == nil || !strings.Contains(err.Error(), "fixed target") {
		t.Errorf("a reserved name must say it collides with a target: %v", err)
	}
}

func TestDiscoverFindsTagDirectoriesWithDockerfiles(t *testing.T) {
	root := t.TempDir()
	for _, d := range []string{"runpod-comfyui", "runpod-fluxgym", "runpod-common", "other"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{"runpod-comfyui", "runpod-fluxgym", "other"} {
		if err := os.WriteFile(filepath.Join(root, d, "Dockerfile"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := Discover(root)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Name != "comfyui" || got[1].Name != "fluxgym" ||
		got[0].Dir != filepath.Join(root, "runpod-comfyui") {
		t.Fatalf("Discover = %+v", got)
	}

	_, err = Find(root, "sdxl")
	if err == nil || !strings.Contains(err.Error(), "comfyui, fluxgym") {
		t.Fatalf("unknown tag must list the known ones: %v", err)
	}
}

func TestDiscoverRefusesInvalidTagDirectory(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "runpod-Flux_Gym")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Discover(root)
	if err == nil || !strings.Contains(err.Error(), "runpod-Flux_Gym") {
		t.Fatalf("want an error naming the directory, got %v", err)
	}
}

func TestNamesFollowTheDocumentedWorkflow(t *testing.T) {
	n := NamesFor("", "comfyui")
	if n.Image != "migdrp/runpod:comfyui" || n.Container != "migdrp-runpod-comfyui" ||
		n.Volume != "comfyui_workspace" {
		t.Fatalf("NamesFor default = %+v", n)
	}
	n = NamesFor("localhost:5000/me/img", "fluxgym")
	if n.Image != "localhost:5000/me/img:fluxgym" ||
		n.Container != "localhost-5000-me-img-fluxgym" {
		t.Fatalf("NamesFor registry = %+v", n)
	}
}
