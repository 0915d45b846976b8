package targets

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/migdrp/runpod/magefiles/engine"
)

// TestSecondRunOfARunningTagIsRefused: a running container is never replaced; the error says
// what to do instead.
func TestSecondRunOfARunningTagIsRefused(t *testing.T) {
	f := newFixture(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := f.session("DETACH=1").run(ctx, f.tag); err != nil {
		t.Fatalf("first run: %v", err)
	}
	before, _ := f.eng.Inspect(ctx, f.names().Container)

	err := f.session("DETACH=1").run(ctx, f.tag)
	if err == nil || !strings.Contains(err.Error(), "stop:"+f.tag.Name) ||
		!strings.Contains(err.Error(), "logs:"+f.tag.Name) {
		t.Fatalf("want an error suggesting stop and logs, got %v", err)
	}
	after, _ := f.eng.Inspect(ctx, f.names().Container)
	if !after.Running || after.ID != before.ID {
		t.Fatalf("the running container was touched: before %s, after %s running=%v",
			before.ID, after.ID, after.Running)
	}
}

// TestRunNamesATakenHostPort: a port held by another program is named before anything starts.
func TestRunNamesATakenHostPort(t *testing.T) {
	f := newFixture(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := f.session().build(ctx, f.tag); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(f.port)))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()

	err = f.session("DETACH=1").run(ctx, f.tag)
	if err == nil || !strings.Contains(err.Error(), strconv.Itoa(f.port)) {
		t.Fatalf("want an error naming port %d, got %v", f.port, err)
	}
	if st, _ := f.eng.Inspect(ctx, f.names().Container); st.Exists {
		t.Fatal("a container was created although the port was taken")
	}
}

// TestMalformedEnvFileStartsNothing: the error names file and line; no container appears.
func TestMalformedEnvFileStartsNothing(t *testing.T) {
	f := newFixture(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	path := filepath.Join(f.root, "envs", "runpod-"+f.tag.Name+".env")
	mustWrite(t, path, "HF_TOKEN=hf_abc\nthis line is wrong\n")

	err := f.session("DETACH=1").run(ctx, f.tag)
	if err == nil || !strings.Contains(err.Error(), path+":2") {
		t.Fatalf("want an error naming %s:2, got %v", path, err)
	}
	if strings.Contains(err.Error(), "hf_abc") {
		t.Fatal("the error shows a secret value")
	}
	if img, _ := f.eng.Image(ctx, f.names().Image); img.Exists {
		t.Fatal("an image was built although the env file is malformed")
	}
}

// TestFailedBuildKeepsImageAndContainer: a broken Dockerfile names the failing step and leaves
// the previous image tagged and the running container alone.
func TestFailedBuildKeepsImageAndContainer(t *testing.T) {
	f := newFixture(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := f.session("DETACH=1").run(ctx, f.tag); err != nil {
		t.Fatalf("run: %v", err)
	}
	before, _ := f.eng.Image(ctx, f.names().Image)
	running, _ := f.eng.Inspect(ctx, f.names().Container)

	appendFile(t, filepath.Join(f.tag.Dir, "Dockerfile"), "RUN echo about to fail && exit 3\n")
	err := f.session("FORCE=1").build(ctx, f.tag)
	if err == nil || !strings.Contains(err.Error(), "(RUN echo about to fail && exit 3)") ||
		!strings.Contains(err.Error(), "code: 3") {
		t.Fatalf("want a build error naming the failing step and its exit code, got %v", err)
	}
	after, _ := f.eng.Image(ctx, f.names().Image)
	if after.ID != before.ID {
		t.Fatalf("the failed build moved the tag from %s to %s", before.ID, after.ID)
	}
	still, _ := f.eng.Inspect(ctx, f.names().Container)
	if !still.Running || still.ID != running.ID {
		t.Fatal("the failed build touched the running container")
	}
}

// TestInterruptedBuildTagsNothing: Ctrl-C (a cancelled context) during a build leaves no image
// under the tag's name.
func TestInterruptedBuildTagsNothing(t *testing.T) {
	f := newFixture(t)
	appendFile(t, filepath.Join(f.tag.Dir, "Dockerfile"), "RUN sleep 30\n")
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(3*time.Second, cancel)

	started := time.Now()
	err := f.session().build(ctx, f.tag)
	if err == nil || !strings.Contains(err.Error(), "interrupted") {
		t.Fatalf("want an interrupted build, got %v", err)
	}
	if d := time.Since(started); d > 10*time.Second {
		t.Fatalf("the build went on for %s after the interrupt", d)
	}
	check, done := context.WithTimeout(context.Background(), 30*time.Second)
	defer done()
	if img, _ := f.eng.Image(check, f.names().Image); img.Exists {
		t.Fatal("an interrupted build tagged an image")
	}
}

// TestForegroundRunStopsAndRemovesOnInterrupt: like docker run -it --rm, Ctrl-C stops and
// removes the container, within the few seconds mage allows.
func TestForegroundRunStopsAndRemovesOnInterrupt(t *testing.T) {
	f := newFixture(t)
	setup, done := context.WithTimeout(context.Background(), 3*time.Minute)
	defer done()
	if err := f.session().build(setup, f.tag); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, filepath.Join(f.root, "envs", "runpod-"+f.tag.Name+".env"),
		"HF_TOKEN=hf_secretvalue123\n")

	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- f.session().run(ctx, f.tag) }()
	if _, err := f.get("/hello.txt"); err != nil {
		cancel()
		t.Fatalf("foreground container never served: %v", err)
	}
	interrupted := time.Now()
	cancel()
	if err := <-errc; err != nil {
		t.Fatalf("run after Ctrl-C: %v", err)
	}
	if d := time.Since(interrupted); d > 5*time.Second {
		t.Fatalf("stopping took %s, mage allows about 5s", d)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		st, _ := f.eng.Inspect(setup, f.names().Container)
		if !st.Exists {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("container %s still exists after Ctrl-C", f.names().Container)
		}
		time.Sleep(100 * time.Millisecond)
	}
	out := f.out.String()
	if !strings.Contains(out, "token length 17") {
		t.Fatalf("the container output was not streamed: %q", out)
	}
	if strings.Contains(out, "hf_secretvalue123") {
		t.Fatal("a secret value reached the output")
	}
}

// TestConcurrentRunOfOneTagIsRefused: while one run holds the tag, a second fails at once and
// creates nothing.
func TestConcurrentRunOfOneTagIsRefused(t *testing.T) {
	f := newFixture(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	unlock, err := lockTag(f.names().Container)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()

	err = f.session("DETACH=1").run(ctx, f.tag)
	if err == nil || !strings.Contains(err.Error(), "another run") {
		t.Fatalf("want a refusal while another run is in progress, got %v", err)
	}
	if img, _ := f.eng.Image(ctx, f.names().Image); img.Exists {
		t.Fatal("the refused run built an image")
	}
}

// TestUnreachableEngineIsOneLine: a wrong DOCKER_HOST gives one line suggesting docker info.
func TestUnreachableEngineIsOneLine(t *testing.T) {
	t.Setenv("DOCKER_HOST", "unix://"+filepath.Join(t.TempDir(), "no.sock"))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := engine.Connect(ctx)
	if !errors.Is(err, engine.ErrUnreachable) {
		t.Fatalf("want ErrUnreachable, got %v", err)
	}
	if strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), "docker info") {
		t.Fatalf("want one line suggesting docker info, got %q", err)
	}
}

func appendFile(t *testing.T, path, text string) {
	t.Helper()
	fh, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	if _, err := fh.WriteString(text); err != nil {
		t.Fatal(err)
	}
}
