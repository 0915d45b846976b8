package engine

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/migdrp/runpod/magefiles/registrytest"
	"github.com/migdrp/runpod/magefiles/testbase"
)

// pushTestImage tags the busybox test image as a new repository on the registry at addr and
// removes that tag when the test ends. It returns the name and the image ID.
func pushTestImage(t *testing.T, e *Engine, addr string) (string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := testbase.Ensure(ctx, e.API, testbase.Busybox); err != nil {
		t.Fatal(err)
	}
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	image := fmt.Sprintf("%s/test/push-%s:1", addr, hex.EncodeToString(suffix))
	if err := e.Tag(ctx, testbase.Busybox, image); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = e.API.ImageRemove(context.Background(), image, client.ImageRemoveOptions{})
	})
	src, err := e.API.ImageInspect(ctx, testbase.Busybox)
	if err != nil {
		t.Fatal(err)
	}
	return image, src.ID
}

// pushTestEnv isolates a test from the caller's credentials.
func pushTestEnv(t *testing.T, user, pass string) {
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	t.Setenv("REGISTRY_USERNAME", user)
	t.Setenv("REGISTRY_PASSWORD", pass)
}

func TestPushThenPullBackFromAuthenticatedRegistry(t *testing.T) {
	e := ConnectForTest(t)
	addr, user, pass := registrytest.Start(t, true)
	image, id := pushTestImage(t, e, addr)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// Push with credentials from the environment.
	pushTestEnv(t, user, pass)
	host, err := RegistryHost(image)
	if err != nil {
		t.Fatal(err)
	}
	auth, err := ResolvePushAuth(host)
	if err != nil {
		t.Fatal(err)
	}
	var progress bytes.Buffer
	if err := e.Push(ctx, image, auth, &progress); err != nil {
		t.Fatalf("push: %v\n%s", err, progress.String())
	}
	if !strings.Contains(progress.String(), "digest: sha256:") {
		t.Errorf("push progress does not show the digest:\n%s", progress.String())
	}
	if strings.Contains(progress.String(), pass) {
		t.Error("push progress shows the password")
	}

	// The registry itself now serves the manifest.
	repo, tag, _ := strings.Cut(strings.TrimPrefix(image, addr+"/"), ":")
	req, err := http.NewRequest(http.MethodHead,
		"http://"+addr+"/v2/"+repo+"/manifests/"+tag, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(user, pass)
	req.Header.Set("Accept", "application/vnd.docker.distribution.manifest.v2+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("registry has no manifest for %s: status %d", image, resp.StatusCode)
	}
	digest := resp.Header.Get("Docker-Content-Digest")

	// Forget the local name, then pull it back with the same credentials.
	if _, err := e.API.ImageRemove(ctx, image, client.ImageRemoveOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.API.ImageInspect(ctx, image); !IsNotFound(err) {
		t.Fatalf("%s still present after removal: %v", image, err)
	}
	header, err := pushHeader(auth)
	if err != nil {
		t.Fatal(err)
	}
	pull, err := e.API.ImagePull(ctx, image, client.ImagePullOptions{RegistryAuth: header})
	if err != nil {
		t.Fatal(err)
	}
	if err := pull.Wait(ctx); err != nil {
		t.Fatalf("pulling %s back: %v", image, err)
	}
	got, err := e.API.ImageInspect(ctx, image)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != id {
		t.Errorf("pulled image ID %s, pushed %s", got.ID, id)
	}
	name, _, _ := strings.Cut(image, ":1")
	found := false
	for _, d := range got.RepoDigests {
		found = found || d == name+"@"+digest
	}
	if !found {
		t.Errorf("pulled image digests %v, registry serves %s", got.RepoDigests, digest)
	}
}

func TestPushWithWrongPasswordIsOneClearLine(t *testing.T) {
	e := ConnectForTest(t)
	addr, user, pass := registrytest.Start(t, true)
	image, _ := pushTestImage(t, e, addr)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	wrong := pass + "-wrong"
	auth := PushAuth{Registry: addr, Username: user, Password: wrong, Source: "test"}
	var progress bytes.Buffer
	err := e.Push(ctx, image, auth, &progress)
	want := fmt.Sprintf("registry %s refused the credentials for user %s: check "+
		"REGISTRY_USERNAME/REGISTRY_PASSWORD or docker login", addr, user)
	if err == nil || err.Error() != want {
		t.Fatalf("got error %v\nwant %s", err, want)
	}
	if !errors.Is(err, ErrCredentialsRefused) {
		t.Error("error does not match ErrCredentialsRefused")
	}
	if strings.Contains(progress.String()+err.Error(), wrong) {
		t.Error("the password was shown")
	}

	// Without any credentials the registry's demand is as plain.
	err = e.Push(ctx, image, PushAuth{Registry: addr}, &progress)
	if !errors.Is(err, ErrCredentialsRefused) || strings.Contains(err.Error(), "\n") {
		t.Errorf("anonymous push to a registry with auth: %v", err)
	}
}

func TestPushToOpenRegistryWithoutCredentials(t *testing.T) {
	e := ConnectForTest(t)
	addr, _, _ := registrytest.Start(t, false)
	image, _ := pushTestImage(t, e, addr)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	pushTestEnv(t, "", "")
	auth, err := ResolvePushAuth(addr)
	if err != nil {
		t.Fatal(err)
	}
	if !auth.Anonymous() {
		t.Fatalf("credentials found in an empty environment: %s", auth)
	}
	if err := e.Push(ctx, image, auth, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
}

func TestPushOfMissingImageSaysBuildFirst(t *testing.T) {
	e := ConnectForTest(t)
	err := e.Push(context.Background(), "127.0.0.1:1/test/never-built-x9:1", PushAuth{},
		&bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "build it first") {
		t.Fatalf("got %v", err)
	}
}

func TestResolvePushAuth(t *testing.T) {
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	cases := []struct {
		name, user, pass, config, host string
		want                           PushAuth
		wantErr                        string
	}{
		{name: "environment", user: "ci", pass: "s3cret", host: "ghcr.io",
			config: `{"auths":{"ghcr.io":{"auth":"` + b64("other:pw") + `"}}}`,
			want:   PushAuth{Registry: "ghcr.io", Username: "ci", Password: "s3cret"}},
		{name: "half the environment", user: "ci", host: "ghcr.io",
			wantErr: "only one of REGISTRY_USERNAME and REGISTRY_PASSWORD"},
		{name: "config with scheme", host: "127.0.0.1:5000",
			config: `{"auths":{"http://127.0.0.1:5000":{"auth":"` + b64("me:p:w") + `"}}}`,
			want:   PushAuth{Registry: "127.0.0.1:5000", Username: "me", Password: "p:w"}},
		{name: "docker hub", host: "docker.io",
			config: `{"auths":{"https://index.docker.io/v1/":{"auth":"` + b64("hub:pw") + `"}}}`,
			want:   PushAuth{Registry: "docker.io", Username: "hub", Password: "pw"}},
		{name: "other registry only", host: "docker.io",
			config: `{"auths":{"ghcr.io":{"auth":"` + b64("gh:pw") + `"}}}`,
			want:   PushAuth{Registry: "docker.io"}},
		{name: "no config file", host: "docker.io", want: PushAuth{Registry: "docker.io"}},
		{name: "credential store", host: "ghcr.io",
			config:  `{"auths":{"ghcr.io":{}},"credsStore":"desktop"}`,
			wantErr: "docker-credential-desktop"},
		{name: "credential helper", host: "ghcr.io",
			config:  `{"credHelpers":{"ghcr.io":"gh"}}`,
			wantErr: "docker-credential-gh"},
		{name: "broken auth", host: "ghcr.io",
			config:  `{"auths":{"ghcr.io":{"auth":"!!"}}}`,
			wantErr: "not base64"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			pushTestEnv(t, c.user, c.pass)
			t.Setenv("DOCKER_CONFIG", dir)
			if c.config != "" {
				err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(c.config), 0o600)
				if err != nil {
					t.Fatal(err)
				}
			}
			got, err := ResolvePushAuth(c.host)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("got error %v, want one saying %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got.Source = ""
			if got != c.want {
				t.Errorf("got %#v / %s:%s, want %s:%s", got, got.Username, got.Password,
					c.want.Username, c.want.Password)
			}
		})
	}
}

func TestPushAuthNeverPrintsThePassword(t *testing.T) {
	a := PushAuth{Registry: "ghcr.io", Username: "me", Password: "hunter2", Source: "env"}
	for _, s := range []string{a.String(), fmt.Sprintf("%v %+v %#v %s", a, a, a, a)} {
		if strings.Contains(s, "hunter2") {
			t.Errorf("password printed: %s", s)
		}
	}
}
