package testbase_test

import (
	"context"
	"testing"
	"time"

	"github.com/migdrp/runpod/magefiles/engine"
	"github.com/migdrp/runpod/magefiles/testbase"
)

func TestEnsureMakesImagesThatRun(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	eng := engine.ConnectForTest(t)
	for _, image := range []string{testbase.Busybox, testbase.Debian} {
		if err := testbase.Ensure(ctx, eng.API, image); err != nil {
			t.Fatalf("Ensure(%s): %v", image, err)
		}
		if _, err := eng.API.ImageInspect(ctx, image); err != nil {
			t.Fatalf("%s missing after Ensure: %v", image, err)
		}
	}
}
