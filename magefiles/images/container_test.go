package images

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/migdrp/runpod/magefiles/engine"
)

const healthTimeout = 90 * time.Second

// jupyterLogin posts a password to JupyterLab's login form with its XSRF token and prints the
// HTTP status: 302 means logged in. Without an argument it uses the container's
// JUPYTER_PASSWORD.
const jupyterLogin = `set -euo pipefail
pw="${1-$JUPYTER_PASSWORD}"
jar="$(mktemp)"
curl -fsS -c "$jar" -o /dev/null http://127.0.0.1:8888/login
xsrf="$(awk '$6 == "_xsrf" { print $7 }' "$jar")"
curl -sS -b "$jar" -c "$jar" -o /dev/null -w '%{http_code}' --data-urlencode "_xsrf=$xsrf" \
	--data-urlencode "password=$pw" http://127.0.0.1:8888/login`

func TestComfyuiContainer(t *testing.T) {
	eng := engine.ConnectForTest(t)
	image := buildTestImage(t, eng, "comfyui")
	volume := newVolume(t, eng)
	hfToken := "hf_" + suffix(t)
	// Quotes, a command substitution and a backslash must neither break nor inject anything.
	jupyterPassword := `it's "quoted" $(touch /tmp/injected) \ ` + suffix(t)
	terminalPassword := "term-" + suffix(t)

	first := startBox(t, eng, image, volume, []string{
		"JUPYTER_PASSWORD=" + jupyterPassword,
		"HUGGINGFACE_TOKEN=" + hfToken,
		"COMFYUI_VRAM_MODE=LOW_VRAM",
	})
	first.waitHealthy(healthTimeout)

	// The first start seeds the volume and lays out ComfyUI's folders on it.
	first.sh(`test -x /workspace/start-comfyui.sh && test -x /workspace/models-setup/wan22.sh`)
	first.sh(`cd /workspace/ComfyUI && test -d models && test -d custom_nodes && test -d output`)

	// ComfyUI runs from the volume's environment with the options the env file asked for.
	pid := first.programPID("comfyui")
	cmdline := first.sh(`tr '\0' ' ' </proc/` + pid + `/cmdline`)
	for _, want := range []string{"/workspace/ComfyUI/venv/bin/python", "--lowvram",
		"--base-directory /workspace/ComfyUI", "--listen 0.0.0.0 --port 8188"} {
		if !strings.Contains(cmdline, want) {
			t.Errorf("ComfyUI command line %q lacks %q", cmdline, want)
		}
	}
	// An env file that still says HUGGINGFACE_TOKEN reaches the app as HF_TOKEN.
	if env := first.sh(`tr '\0' '\n' </proc/` + pid + `/environ`); !strings.Contains(env,
		"HF_TOKEN="+hfToken) {
		t.Error("HUGGINGFACE_TOKEN did not reach ComfyUI as HF_TOKEN")
	}

	// Custom nodes see the image's packages, and what they install lands on the volume.
	first.sh(`/workspace/ComfyUI/venv/bin/python -c 'import imagepkg'`)
	first.sh(`site="$(/workspace/ComfyUI/venv/bin/python -c \
		'import sysconfig; print(sysconfig.get_paths()["purelib"])')" &&
		case "$site" in /workspace/*) ;; *) exit 1 ;; esac &&
		echo 'INSTALLED = True' >"$site/nodepkg.py"`)

	// JupyterLab logs in with the exact password, refuses another, and keeps XSRF checks on.
	first.waitFor(30*time.Second, "JupyterLab to answer", func() bool {
		_, code := first.exec("curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:8888/login")
		return code == 0
	})
	if got := first.sh(jupyterLogin); got != "302" {
		t.Errorf("login with JUPYTER_PASSWORD answered %s, want 302", got)
	}
	if out, _ := first.exec("bash", "-c", jupyterLogin, "login", "wrong"); out == "302" {
		t.Error("JupyterLab accepted a wrong password")
	}
	if got := first.sh(`curl -sS -o /dev/null -w '%{http_code}' ` +
		`--data-urlencode "password=$JUPYTER_PASSWORD" http://127.0.0.1:8888/login`); got != "403" {
		t.Errorf("a login without the XSRF token answered %s, want 403", got)
	}
	if _, code := first.exec("test", "-e", "/tmp/injected"); code == 0 {
		t.Error("the Jupyter password was executed as code")
	}

	// Without TERMINAL_PASSWORD the terminal is not started, and the log says why.
	assertNotServing(t, first, "terminal", "7860", "TERMINAL_PASSWORD is empty")

	assertRestartsAfterKill(t, first, "comfyui", "8188")

	// A user edit and a user file survive a restart and a recreation; the environment of
	// custom-node packages is made once.
	second := assertUserFilesSurvive(t, first, image, "/workspace/start-comfyui.sh",
		"/workspace/ComfyUI/output/mine.png", []string{
			"TERMINAL_USER=alice", "TERMINAL_PASSWORD=" + terminalPassword,
		})
	second.sh(`/workspace/ComfyUI/venv/bin/python -c 'import nodepkg, imagepkg'`)
	if strings.Contains(second.logs(), "creating /workspace/ComfyUI/venv") {
		t.Error("the custom-node environment was created again after recreation")
	}

	// Without JUPYTER_PASSWORD Jupyter is not started; with credentials the terminal is.
	assertNotServing(t, second, "jupyter", "8888", "JUPYTER_PASSWORD is empty")
	assertTerminalUsesCredentials(t, second, "alice:"+terminalPassword)

	assertNoSecretsInImage(t, eng, image, hfToken, jupyterPassword, terminalPassword)
}

func TestFluxgymContainer(t *testing.T) {
	eng := engine.ConnectForTest(t)
	image := buildTestImage(t, eng, "fluxgym")
	volume := newVolume(t, eng)
	hfToken := "hf_" + suffix(t)
	terminalPassword := "term-" + suffix(t)

	first := startBox(t, eng, image, volume, []string{
		"HF_TOKEN=" + hfToken,
		"TERMINAL_PASSWORD=" + terminalPassword,
	})
	first.waitHealthy(healthTimeout)

	// The first start seeds the volume; FluxGym's data folders resolve into it.
	first.sh(`test -x /workspace/start-fluxgym.sh && test -x /workspace/download-models.sh`)
	first.sh(`for d in models/unet models/clip models/vae outputs datasets; do
		test -d "/opt/fluxgym/$d" && test -d "/workspace/fluxgym/$d"; done`)

	// FluxGym is configured through Gradio's variables, with no share link.
	pid := first.programPID("fluxgym")
	env := first.sh(`tr '\0' '\n' </proc/` + pid + `/environ`)
	for _, want := range []string{"GRADIO_SERVER_NAME=0.0.0.0", "GRADIO_SERVER_PORT=7861",
		"GRADIO_SHARE=False", "HF_TOKEN=" + hfToken} {
		if !strings.Contains(env, want+"\n") {
			t.Errorf("FluxGym's environment lacks %s", strings.SplitN(want, "=", 2)[0]+"=...")
		}
	}
	if !strings.Contains(first.logs(), "stand-in app on 0.0.0.0:7861") {
		t.Error("FluxGym did not listen on 0.0.0.0:7861")
	}

	assertNotServing(t, first, "jupyter", "8888", "JUPYTER_PASSWORD is empty")
	assertTerminalUsesCredentials(t, first, "runpod:"+terminalPassword)
	assertRestartsAfterKill(t, first, "fluxgym", "7861")
	second := assertUserFilesSurvive(t, first, image, "/workspace/start-fluxgym.sh",
		"/workspace/fluxgym/outputs/my-lora/my-lora.safetensors", nil)
	assertNotServing(t, second, "terminal", "7860", "TERMINAL_PASSWORD is empty")

	assertNoSecretsInImage(t, eng, image, hfToken, terminalPassword)
}

// assertNotServing checks that a service without credentials was not started, that nothing
// answers on its port, and that the log explains why.
func assertNotServing(t *testing.T, b *box, program, port, reason string) {
	t.Helper()
	if pid := b.programPID(program); pid != "0" {
		t.Errorf("%s runs (pid %s) without credentials", program, pid)
	}
	if _, code := b.exec("curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:"+port+"/"); code == 0 {
		t.Errorf("something answers on port %s although %s must not run", port, program)
	}
	if !strings.Contains(b.logs(), reason) {
		t.Errorf("the log does not say %q", reason)
	}
}

// assertTerminalUsesCredentials checks the web terminal was started behind basic auth.
func assertTerminalUsesCredentials(t *testing.T, b *box, credential string) {
	t.Helper()
	b.waitFor(20*time.Second, "the web terminal to start", func() bool {
		_, code := b.exec("test", "-s", "/run/ttyd.args")
		return code == 0
	})
	args := b.sh(`cat /run/ttyd.args`)
	if !strings.Contains(args, "--credential\n"+credential+"\n") {
		t.Errorf("the web terminal was started without the expected credentials: %q",
			strings.ReplaceAll(args, credential, "<credential>"))
	}
}

// assertRestartsAfterKill kills the app, then makes it exit with status 1, and expects
// supervisord to bring it back both times.
func assertRestartsAfterKill(t *testing.T, b *box, program, port string) {
	t.Helper()
	url := "http://127.0.0.1:" + port + "/"
	crashes := []struct{ how, cmd string }{
		{"killed", "kill -9 %s"},
		{"exited with status 1", "curl -fsS -o /dev/null " + url + "crash || true"},
	}
	for _, c := range crashes {
		// supervisord retries a program that dies before startsecs anyway; a crash counts
		// only once the program is RUNNING.
		b.waitFor(30*time.Second, program+" to be RUNNING", func() bool {
			out, _ := b.exec("supervisorctl", "status", program)
			return strings.Contains(out, "RUNNING")
		})
		old := b.programPID(program)
		b.sh(strings.ReplaceAll(c.cmd, "%s", old))
		b.waitFor(30*time.Second, program+" to be restarted after it "+c.how, func() bool {
			pid := b.programPID(program)
			if pid == "0" || pid == old {
				return false
			}
			_, code := b.exec("curl", "-fsS", "-o", "/dev/null", url)
			return code == 0
		})
	}
}

// assertUserFilesSurvive edits a seeded script and writes a user file, restarts the container,
// then replaces it with a new one on the same volume started with env. Both must keep the
// edit and the file. It returns the new container.
func assertUserFilesSurvive(t *testing.T, first *box, image, script, userFile string,
	env []string) *box {
	t.Helper()
	mark := "# tuned by the user " + suffix(t)
	first.sh(`echo '` + mark + `' >>` + script + ` && mkdir -p "$(dirname ` + userFile + `)" &&
		echo mine >` + userFile)
	check := func(b *box, when string) {
		if out, code := b.exec("grep", "-qF", mark, script); code != 0 {
			t.Errorf("the user's edit of %s was lost after %s %s", script, when, out)
		}
		if _, code := b.exec("test", "-s", userFile); code != 0 {
			t.Errorf("%s was lost after %s", userFile, when)
		}
	}

	first.restart()
	first.waitHealthy(healthTimeout)
	check(first, "a restart")

	first.remove()
	second := startBox(t, first.eng, image, first.volume, env)
	second.waitHealthy(healthTimeout)
	check(second, "a recreation")
	return second
}

// assertNoSecretsInImage checks that values given at run time appear nowhere in the image's
// configuration or history.
func assertNoSecretsInImage(t *testing.T, eng *engine.Engine, image string, secrets ...string) {
	t.Helper()
	ctx := context.Background()
	inspect, err := eng.API.ImageInspect(ctx, image)
	if err != nil {
		t.Fatal(err)
	}
	history, err := eng.API.ImageHistory(ctx, image)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal([]any{inspect, history.Items})
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range secrets {
		if strings.Contains(string(raw), s) {
			t.Errorf("secret #%d given at run time appears in the image config or history", i)
		}
	}
}
