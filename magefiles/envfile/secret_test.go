package envfile

import (
	"bytes"
	"strings"
	"testing"
)

func TestIsSecret(t *testing.T) {
	cases := map[string]bool{
		"HF_TOKEN":               true,
		"HUGGINGFACE_TOKEN":      true,
		"JUPYTER_PASSWORD":       true,
		"AWS_SECRET_ACCESS_KEY":  true,
		"API_KEY":                true,
		"KEY":                    true,
		"OPENAI_API_KEY":         true,
		"apiKey":                 true,
		"hf_token":               true,
		"DB_PASS":                true,
		"HFTOKEN":                true,
		"GITHUB_CREDENTIALS":     true,
		"BASIC_AUTH":             true,
		"SSH_PRIVATE_KEY":        true,
		"MONKEY":                 false,
		"KEYBOARD_LAYOUT":        false,
		"AUTHOR":                 false,
		"COMFYUI_VRAM_MODE":      false,
		"GRADIO_SERVER_PORT":     false,
		"TOKENIZERS_PARALLELISM": false,
		"PASSTHROUGH":            false,
		"HOCKEY_TEAM":            false,
	}
	for key, want := range cases {
		if got := IsSecret(key); got != want {
			t.Errorf("IsSecret(%q) = %v, want %v", key, got, want)
		}
	}
}

func TestMask(t *testing.T) {
	if got := Mask("HF_TOKEN", "hf_abc"); got != Masked {
		t.Errorf("Mask(HF_TOKEN) = %q", got)
	}
	if got := Mask("HF_TOKEN", ""); got != "" {
		t.Errorf("an unset secret should show as empty, got %q", got)
	}
	if got := Mask("COMFYUI_VRAM_MODE", "LOW_VRAM"); got != "LOW_VRAM" {
		t.Errorf("Mask(COMFYUI_VRAM_MODE) = %q", got)
	}
}

func testFile() *File {
	return &File{
		Keys: []string{"HF_TOKEN", "JUPYTER_PASSWORD", "PIN_CODE_KEY", "MODE", "SSH_PRIVATE_KEY"},
		Values: map[string]string{
			"HF_TOKEN":         "hf_abcdefghijklmnop",
			"JUPYTER_PASSWORD": "hunter2hunter2",
			"PIN_CODE_KEY":     "123", // too short to redact in free text
			"MODE":             "LOW_VRAM",
			"SSH_PRIVATE_KEY":  "-----BEGIN-----\nAAAAline1secret\nBBBBline2secret\n-----END-----",
		},
	}
}

func TestRedactMasksEverySecretValue(t *testing.T) {
	r := testFile().Redactor()
	in := "token=hf_abcdefghijklmnop pw=hunter2hunter2hunter2hunter2 mode=LOW_VRAM pin=123 " +
		"key=AAAAline1secret"
	got := r.Redact(in)
	want := "token=**** pw=******** mode=LOW_VRAM pin=123 key=****"
	if got != want {
		t.Errorf("Redact:\n got %q\nwant %q", got, want)
	}
	if got := (*Redactor)(nil).Redact("x"); got != "x" {
		t.Errorf("nil redactor changed text: %q", got)
	}
}

func TestRedactWriterMasksASecretSplitAcrossWrites(t *testing.T) {
	var out bytes.Buffer
	w := testFile().Redactor().Writer(&out)
	chunks := []string{"starting\nlogin with hf_abcdef", "ghijklmnop ok\npassword hun",
		"ter2", "hunter2", "\rprogress 50%\r", "tail hunter2hunt", "er2"}
	for _, c := range chunks {
		if _, err := w.Write([]byte(c)); err != nil {
			t.Fatal(err)
		}
		if s := out.String(); strings.Contains(s, "hf_abc") || strings.Contains(s, "hunter2") {
			t.Fatalf("partial secret written: %q", s)
		}
	}
	if strings.Contains(out.String(), "tail") {
		t.Errorf("an unfinished line was passed on before Flush: %q", out.String())
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	want := "starting\nlogin with **** ok\npassword ****\rprogress 50%\rtail ****"
	if out.String() != want {
		t.Errorf("redacted stream:\n got %q\nwant %q", out.String(), want)
	}
}
