// Package registrytest starts a real image registry on 127.0.0.1 for tests that push and pull,
// using Debian's docker-registry package, since no public registry can be reached.
package registrytest

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// Binary is where Debian's docker-registry package installs the registry.
const Binary = "/usr/bin/docker-registry"

// Start runs a registry with empty storage on a free 127.0.0.1 port and stops it when the test
// ends. With withAuth it demands basic auth from a random user and password, which it returns;
// without, user and pass are empty. Without the binary the test is skipped, except under
// CI=true, where a missing registry is a broken setup and fails the test.
func Start(t testing.TB, withAuth bool) (addr, user, pass string) {
	t.Helper()
	bin, err := exec.LookPath(Binary)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true needs %s (apt-get install docker-registry): %v", Binary, err)
		}
		t.Skipf("no registry binary (apt-get install docker-registry): %v", err)
	}
	dir := t.TempDir()

	// Users, when asked for: the registry reads bcrypt hashes only.
	authConfig := ""
	if withAuth {
		user, pass = "user-"+random(4), random(12)
		hash, err := bcrypt.GenerateFromPassword([]byte(pass), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		htpasswd := filepath.Join(dir, "htpasswd")
		if err := os.WriteFile(htpasswd, []byte(user+":"+string(hash)+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		authConfig = fmt.Sprintf("auth:\n  htpasswd:\n    realm: test\n    path: %s\n",
			htpasswd)
	}

	// A port that was free a moment ago; a lost race shows as a registry that never answers.
	addr, err = freePort()
	if err != nil {
		t.Fatal(err)
	}
	config := filepath.Join(dir, "config.yml")
	body := fmt.Sprintf("version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\n"+
		"storage:\n  filesystem:\n    rootdirectory: %s\n  delete:\n    enabled: true\n"+
		"http:\n  addr: %s\n%s", filepath.Join(dir, "storage"), addr, authConfig)
	if err := os.WriteFile(config, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}

	// Run it, logging to a file that is shown when the test fails.
	logPath := filepath.Join(dir, "registry.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", config)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		t.Fatalf("starting %s: %v", bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		_ = logFile.Close()
		if t.Failed() {
			if log, err := os.ReadFile(logPath); err == nil {
				t.Logf("registry log:\n%s", log)
			}
		}
	})

	if err := waitReady(addr, exited); err != nil {
		log, _ := os.ReadFile(logPath)
		t.Fatalf("registry on %s: %v\n%s", addr, err, log)
	}
	return addr, user, pass
}

// waitReady polls the registry's API root until it answers (401 counts: auth is on).
func waitReady(addr string, exited <-chan error) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			return fmt.Errorf("exited during start-up: %v", err)
		default:
		}
		resp, err := client.Get("http://" + addr + "/v2/")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("no answer within 15s")
}

func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("finding a free port: %w", err)
	}
	addr := l.Addr().String()
	return addr, l.Close()
}

func random(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
