package targets

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/pkg/authconfig"
	"github.com/moby/moby/api/types/registry"
	"github.com/moby/moby/client"

	"github.com/migdrp/runpod/magefiles/registrytest"
)

// TestPushPublishesTagAndRevisionAndRefusesUncommitted pushes a built fixture to a real
// registry under its name and its immutable revision name, and refuses the immutable name once
// the tag's files have uncommitted changes.
func TestPushPublishesTagAndRevisionAndRefusesUncommitted(t *testing.T) {
	addr, user, pass := registrytest.Start(t, true)
	f := newFixture(t)
	f.env["IMAGE_REPO"] = addr + "/test-" + randomSuffix() + "/runpod"
	f.env["REGISTRY_USERNAME"] = user
	f.env["REGISTRY_PASSWORD"] = pass
	t.Setenv("REGISTRY_USERNAME", user)
	t.Setenv("REGISTRY_PASSWORD", pass)
	f.gitInit()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := f.session().build(ctx, f.tag); err != nil {
		t.Fatal(err)
	}
	img, _ := f.eng.Image(ctx, f.names().Image)
	immutable := f.names().Image + "-" + shortRev(img.Labels["org.opencontainers.image.revision"])
	t.Cleanup(func() {
		_, _ = f.eng.API.ImageRemove(context.Background(), immutable,
			client.ImageRemoveOptions{Force: true})
	})

	if err := f.session().push(ctx, f.tag); err != nil {
		t.Fatalf("push: %v", err)
	}
	if strings.Contains(f.out.String(), pass) {
		t.Fatal("the registry password reached the output")
	}
	// Both names come back from the registry.
	for _, ref := range []string{f.names().Image, immutable} {
		if _, err := f.eng.API.ImageRemove(ctx, ref, client.ImageRemoveOptions{}); err != nil {
			t.Fatal(err)
		}
		pull, err := f.eng.API.ImagePull(ctx, ref, client.ImagePullOptions{
			RegistryAuth: registryAuth(t, user, pass, addr)})
		if err != nil {
			t.Fatalf("pulling %s back: %v", ref, err)
		}
		if err := pull.Wait(ctx); err != nil {
			t.Fatalf("pulling %s back: %v", ref, err)
		}
	}

	// An uncommitted change: no immutable name.
	appendFile(t, filepath.Join(f.tag.Dir, "workspace", "hello.txt"), "more\n")
	err := f.session().push(ctx, f.tag)
	if err == nil || !strings.Contains(err.Error(), "uncommitted") {
		t.Fatalf("want a refusal for uncommitted changes, got %v", err)
	}
}

func registryAuth(t *testing.T, user, pass, addr string) string {
	t.Helper()
	enc, err := authconfig.Encode(registry.AuthConfig{Username: user, Password: pass,
		ServerAddress: addr})
	if err != nil {
		t.Fatal(err)
	}
	return enc
}
