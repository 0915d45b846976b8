package buildcontext_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/build"
	"github.com/moby/moby/client"

	"github.com/migdrp/runpod/magefiles/buildcontext"
	"github.com/migdrp/runpod/magefiles/engine"
	"github.com/migdrp/runpod/magefiles/testbase"
)

func TestContextBuildsWithEngine(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	eng := engine.ConnectForTest(t)
	if err := testbase.Ensure(ctx, eng.API, testbase.Busybox); err != nil {
		t.Fatal(err)
	}

	// A tag directory in a repository that also holds what a context must never carry.
	repo := t.TempDir()
	writeTree(t, repo, map[string]string{
		"runpod-probe/Dockerfile": "FROM " + testbase.Busybox + "\n" +
			"COPY . /ctx/\n" +
			"COPY common/ /opt/common/\n",
		"runpod-probe/.dockerignore":      "ignored.txt\n",
		"runpod-probe/ignored.txt":        "must not reach the image",
		"runpod-probe/workspace/start.sh": "#!/bin/sh\necho started\n",
		"runpod-probe/.git/config":        "[core]",
		"runpod-probe/local.env":          "TOKEN=secret",
		"common/lib/log.sh":               "log() { echo \"$*\"; }\n",
		"envs/runpod-probe.env":           "TOKEN=secret",
	})
	tagDir := filepath.Join(repo, "runpod-probe")
	if err := os.Chmod(filepath.Join(tagDir, "workspace/start.sh"), 0o755); err != nil {
		t.Fatal(err)
	}

	// Build with the classic builder from a streamed context.
	image := "runpod-test/buildcontext:" + randomSuffix(t)
	t.Cleanup(func() {
		_, err := eng.API.ImageRemove(context.Background(), image,
			client.ImageRemoveOptions{Force: true, PruneChildren: true})
		if err != nil && !engine.IsNotFound(err) {
			t.Errorf("removing %s: %v", image, err)
		}
	})
	r, stats := buildcontext.Reader(tagDir, []buildcontext.Overlay{
		{Source: filepath.Join(repo, "common"), Target: "common"}})
	defer r.Close()
	res, err := eng.API.ImageBuild(ctx, r, client.ImageBuildOptions{
		Tags: []string{image}, Version: build.BuilderV1, Remove: true, ForceRemove: true,
	})
	if err != nil {
		t.Fatalf("building: %v", err)
	}
	if err := readBuildOutput(res.Body); err != nil {
		t.Fatalf("building: %v", err)
	}
	if st := stats(); st.Files != 4 || st.Bytes == 0 {
		t.Errorf("Stats = %+v, want 4 files (Dockerfile, .dockerignore, start.sh, log.sh)"+
			" and some bytes", st)
	}

	// Look at what the image holds through a created, never started container.
	created, err := eng.API.ContainerCreate(ctx, client.ContainerCreateOptions{
		Image: image, Name: "runpod-test-buildcontext-" + randomSuffix(t)})
	if err != nil {
		t.Fatalf("creating a container: %v", err)
	}
	t.Cleanup(func() {
		_, err := eng.API.ContainerRemove(context.Background(), created.ID,
			client.ContainerRemoveOptions{Force: true})
		if err != nil && !engine.IsNotFound(err) {
			t.Errorf("removing container: %v", err)
		}
	})
	copied, err := eng.API.CopyFromContainer(ctx, created.ID,
		client.CopyFromContainerOptions{SourcePath: "/ctx"})
	if err != nil {
		t.Fatalf("copying /ctx out: %v", err)
	}
	defer copied.Content.Close()
	_, inImage := readTar(t, copied.Content)

	if _, ok := inImage["ctx/ignored.txt"]; ok {
		t.Error("ignored.txt, listed in .dockerignore, is in the image")
	}
	for name := range inImage {
		if strings.Contains(name, ".git") || strings.HasSuffix(name, ".env") {
			t.Errorf("%s reached the image", name)
		}
	}
	script, ok := inImage["ctx/workspace/start.sh"]
	if !ok || script.body != "#!/bin/sh\necho started\n" || script.hdr.Mode&0o111 == 0 {
		t.Errorf("ctx/workspace/start.sh: present %v, want the executable script", ok)
	}

	shared, err := eng.API.CopyFromContainer(ctx, created.ID,
		client.CopyFromContainerOptions{SourcePath: "/opt/common/lib/log.sh"})
	if err != nil {
		t.Fatalf("the overlay did not reach the image: %v", err)
	}
	defer shared.Content.Close()
	if _, got := readTar(t, shared.Content); got["log.sh"].body != "log() { echo \"$*\"; }\n" {
		t.Errorf("overlay file in the image = %q", got["log.sh"].body)
	}
}

// readBuildOutput drains the engine's JSON build stream and returns the error it reports.
func readBuildOutput(body io.ReadCloser) error {
	defer body.Close()
	dec := json.NewDecoder(body)
	var log strings.Builder
	for {
		var msg struct {
			Stream      string `json:"stream"`
			Error       string `json:"error"`
			ErrorDetail struct {
				Message string `json:"message"`
			} `json:"errorDetail"`
		}
		if err := dec.Decode(&msg); errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return err
		}
		log.WriteString(msg.Stream)
		if msg.Error != "" {
			return errors.New(msg.Error + "\n" + log.String())
		}
	}
}

func randomSuffix(t *testing.T) string {
	t.Helper()
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}
