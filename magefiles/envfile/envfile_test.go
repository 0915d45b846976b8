package envfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadReadsCommentsExportAndQuotesInFileOrder(t *testing.T) {
	path := writeFile(t, "runpod-x.env", `# Settings of x
export ZED=last-in-name-order

JUPYTER_PASSWORD='it"s'   # trailing comment
GREETING="hello\nworld"
PLAIN = spaced value # comment
RAW='no $ZED expansion'
EXPANDED="${ZED}!"
MULTI="line one
line two"
EMPTY=
COLOR=#fff
WIN=crlf`+"\r\n"+`AFTER=1
`)
	f, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	wantKeys := []string{"ZED", "JUPYTER_PASSWORD", "GREETING", "PLAIN", "RAW", "EXPANDED",
		"MULTI", "EMPTY", "COLOR", "WIN", "AFTER"}
	if !reflect.DeepEqual(f.Keys, wantKeys) {
		t.Errorf("keys = %q, want %q", f.Keys, wantKeys)
	}
	want := map[string]string{
		"ZED":              "last-in-name-order",
		"JUPYTER_PASSWORD": `it"s`,
		"GREETING":         "hello\nworld",
		"PLAIN":            "spaced value",
		"RAW":              "no $ZED expansion",
		"EXPANDED":         "last-in-name-order!",
		"MULTI":            "line one\nline two",
		"EMPTY":            "",
		"COLOR":            "#fff",
		"WIN":              "crlf",
		"AFTER":            "1",
	}
	for k, v := range want {
		if f.Values[k] != v {
			t.Errorf("%s = %q, want %q", k, f.Values[k], v)
		}
	}
	env := f.Env()
	if env[0] != "ZED=last-in-name-order" || env[6] != "MULTI=line one\nline two" {
		t.Errorf("Env() not in file order: %q", env)
	}
	masked := strings.Join(f.MaskedEnv(), " ")
	if strings.Contains(masked, `it"s`) || !strings.Contains(masked, "JUPYTER_PASSWORD=****") {
		t.Errorf("MaskedEnv shows the password: %q", masked)
	}
}

func TestLoadReportsTheMalformedLine(t *testing.T) {
	cases := []struct {
		name    string
		content string
		line    int
		problem string
	}{
		{"first line", "hf_abc123secret\nA=1\n", 1, `no "="`},
		{"middle", "A=1\n# ok\n\nB C=2\nD=3\n", 4, "contains a space"},
		{"bad character", "A=1\nMY-VAR=2\n", 2, `unexpected character '-'`},
		{"digit first", "A=1\n\n1A=2\n", 3, "starts with a digit"},
		{"no name", "A=1\n=2\n", 2, "no variable name"},
		{"last line without newline", "A=1\nB", 2, `no "="`},
		{"after multi-line value", "A=\"one\ntwo\nthree\"\nB=2\nC\n", 5, `no "="`},
		{"unterminated quote", "A=1\nB=\"open\nC=3\nD=4\n", 2, "never closed"},
		{"unterminated single quote", "A='x\n", 1, "never closed"},
		{"text after quote", "A=\"one\ntwo\" junk\nB=2\n", 2, "after the closing quote"},
		{"comment read as value", "A=1\nJUPYTER_PASSWORD= # set me\n", 2, `starts with "#"`},
		{"crlf", "A=1\r\nB=2\r\nbroken\r\n", 3, `no "="`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := writeFile(t, "runpod-x.env", c.content)
			_, err := Load(path)
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("want a SyntaxError, got %v", err)
			}
			if se.Line != c.line {
				t.Errorf("line %d, want %d: %v", se.Line, c.line, err)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, path+":") || !strings.Contains(msg, c.problem) {
				t.Errorf("message %q lacks %s:%d or %q", msg, path, c.line, c.problem)
			}
			if strings.Contains(msg, "\n") || strings.Contains(msg, "hf_abc123secret") {
				t.Errorf("message is not one line free of file content: %q", msg)
			}
			if se.Fix == "" {
				t.Errorf("message says nothing about what to do: %q", msg)
			}
		})
	}
}

func TestLoadMissingFileSuggestsTheExample(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "runpod-x.env")

	_, err := Load(path)
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("want a not-exist error, got %v", err)
	}
	if strings.Contains(err.Error(), "create it from") {
		t.Errorf("suggests an example that does not exist: %v", err)
	}

	if err := os.WriteFile(ExamplePath(path), []byte("A=\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Load(path)
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(),
		"create it from "+path+".example") {
		t.Fatalf("want a suggestion naming the example, got %v", err)
	}
}

func TestPathFor(t *testing.T) {
	if got := PathFor("/repo", "comfyui"); got != "/repo/envs/runpod-comfyui.env" {
		t.Errorf("PathFor = %s", got)
	}
}
