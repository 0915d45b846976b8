package engine

import (
	"context"
	"os"
	"testing"
	"time"
)

// ConnectForTest connects to the engine for a test. Without an engine the test is skipped on
// a developer's machine and fails under CI=true, where a missing engine is a broken setup.
func ConnectForTest(t testing.TB) *Engine {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	e, err := Connect(ctx)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true needs a Docker Engine: %v", err)
		}
		t.Skipf("no Docker Engine: %v", err)
	}
	t.Cleanup(func() { _ = e.Close() })
	return e
}
