package envfile

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

const example = `# Settings for the comfyui image.

# Password of JupyterLab; left empty, one is generated.
JUPYTER_PASSWORD=
# Token from https://huggingface.co/settings/tokens
HF_TOKEN=
export SESSION_SECRET=""
COMFYUI_VRAM_MODE=NORMAL_VRAM   # HIGH_VRAM, LOW_VRAM, NORMAL_VRAM or CPU
ADMIN_PASSWORD=preset
MOTD="multi
line"
`

func TestCreateFromExampleFillsPasswordsAndListsMissing(t *testing.T) {
	dir := t.TempDir()
	ex := filepath.Join(dir, "runpod-x.env.example")
	target := filepath.Join(dir, "runpod-x.env")
	if err := os.WriteFile(ex, []byte(example), 0o644); err != nil {
		t.Fatal(err)
	}

	created, err := CreateFromExample(ex, target)
	if err != nil {
		t.Fatal(err)
	}
	if created.Path != target {
		t.Errorf("Path = %s", created.Path)
	}
	if want := []string{"JUPYTER_PASSWORD", "SESSION_SECRET"}; !reflect.DeepEqual(
		created.Generated, want) {
		t.Errorf("Generated = %q, want %q", created.Generated, want)
	}
	if want := []string{"HF_TOKEN"}; !reflect.DeepEqual(created.Missing, want) {
		t.Errorf("Missing = %q, want %q", created.Missing, want)
	}

	// The file is private.
	info, err := os.Stat(target)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", info.Mode().Perm())
	}

	// Comments, order and formatting survive; only the empty password values changed.
	raw, err := os.ReadFile(target)
	if err != nil {
		t.Fatal(err)
	}
	hex := `[0-9a-f]{32}`
	pattern := regexp.QuoteMeta(example)
	pattern = strings.Replace(pattern, "JUPYTER_PASSWORD=\n", "JUPYTER_PASSWORD="+hex+"\n", 1)
	pattern = strings.Replace(pattern, `SESSION_SECRET=""`, `SESSION_SECRET="`+hex+`"`, 1)
	if !regexp.MustCompile("^" + pattern + "$").Match(raw) {
		t.Errorf("written file does not keep the example's layout:\n%s", raw)
	}

	// The result loads, with distinct random values.
	f, err := Load(target)
	if err != nil {
		t.Fatal(err)
	}
	if f.Values["JUPYTER_PASSWORD"] == f.Values["SESSION_SECRET"] ||
		f.Values["ADMIN_PASSWORD"] != "preset" || f.Values["MOTD"] != "multi\nline" {
		t.Errorf("unexpected values after creation")
	}
}

func TestCreateFromExampleRefusesToOverwrite(t *testing.T) {
	dir := t.TempDir()
	ex := filepath.Join(dir, "runpod-x.env.example")
	target := filepath.Join(dir, "runpod-x.env")
	if err := os.WriteFile(ex, []byte(example), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(target, []byte("JUPYTER_PASSWORD=mine\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	_, err := CreateFromExample(ex, target)
	if err == nil || !strings.Contains(err.Error(), "exists already") {
		t.Fatalf("want a refusal, got %v", err)
	}
	raw, _ := os.ReadFile(target)
	if string(raw) != "JUPYTER_PASSWORD=mine\n" {
		t.Errorf("existing file changed: %q", raw)
	}
}

func TestCreateFromExampleReportsAMalformedExample(t *testing.T) {
	dir := t.TempDir()
	ex := filepath.Join(dir, "runpod-x.env.example")
	target := filepath.Join(dir, "runpod-x.env")
	if err := os.WriteFile(ex, []byte("A=\nnot an assignment\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := CreateFromExample(ex, target)
	if err == nil || !strings.HasPrefix(err.Error(), ex+":2:") {
		t.Fatalf("want an error naming %s:2, got %v", ex, err)
	}
	if _, err := os.Stat(target); !os.IsNotExist(err) {
		t.Errorf("target written despite the error")
	}
}

func TestIsGeneratable(t *testing.T) {
	cases := map[string]bool{
		"JUPYTER_PASSWORD": true, "SESSION_SECRET": true, "DB_PASSWD": true, "DB_PASS": true,
		"HF_TOKEN": false, "API_KEY": false, "AWS_SECRET_ACCESS_KEY": false,
		"CLIENT_SECRET": false, "COMFYUI_VRAM_MODE": false, "PASSTHROUGH": false,
	}
	for key, want := range cases {
		if got := IsGeneratable(key); got != want {
			t.Errorf("IsGeneratable(%q) = %v, want %v", key, got, want)
		}
	}
}
