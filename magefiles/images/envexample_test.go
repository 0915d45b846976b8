package images

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// envVariables are the variables each image reads from its env file.
var envVariables = map[string][]string{
	"comfyui": {"JUPYTER_PASSWORD", "TERMINAL_USER", "TERMINAL_PASSWORD", "HF_TOKEN",
		"COMFYUI_VRAM_MODE", "COMFYUI_EXTRA_ARGS"},
	"fluxgym": {"JUPYTER_PASSWORD", "TERMINAL_USER", "TERMINAL_PASSWORD", "HF_TOKEN",
		"GRADIO_SERVER_NAME", "GRADIO_SERVER_PORT"},
}

func TestEnvExamplesDocumentEveryVariableWithoutSecrets(t *testing.T) {
	root := repoRoot(t)
	for tag, want := range envVariables {
		path := filepath.Join(root, "envs", "runpod-"+tag+".env.example")
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		values := map[string]string{}
		documented := map[string]bool{}
		comment := false
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			key, value, ok := strings.Cut(line, "=")
			// A comment documents the variables of the block that follows it, up to a blank
			// line.
			switch {
			case line == "":
				comment = false
			case strings.HasPrefix(line, "#"):
				comment = true
			case ok:
				values[key] = value
				documented[key] = comment
			}
		}
		f.Close()
		for _, key := range want {
			if _, ok := values[key]; !ok {
				t.Errorf("%s does not list %s", filepath.Base(path), key)
			} else if !documented[key] {
				t.Errorf("%s lists %s without a comment above it", filepath.Base(path), key)
			}
		}
		for key, value := range values {
			if secretKey.MatchString(key) && value != "" {
				t.Errorf("%s ships a value for the secret %s", filepath.Base(path), key)
			}
		}
	}
}
