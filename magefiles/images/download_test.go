package images

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// modelServer serves one file with range support, like Hugging Face does, and records the
// Range header of every request. A cutFirstAt above 0 drops the first response after that
// many bytes.
type modelServer struct {
	*httptest.Server
	mu     sync.Mutex
	ranges []string
}

func newModelServer(t *testing.T, content []byte, cutFirstAt int) *modelServer {
	t.Helper()
	s := &modelServer{}
	var calls int
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.ranges = append(s.ranges, r.Header.Get("Range"))
		calls++
		first := calls == 1
		s.mu.Unlock()
		if first && cutFirstAt > 0 {
			// Promise the whole file, send part of it, then drop the connection.
			w.Header().Set("Content-Length", strconv.Itoa(len(content)))
			_, _ = w.Write(content[:cutFirstAt])
			if f, ok := w.(http.Flusher); ok {
				f.Flush()
			}
			panic(http.ErrAbortHandler)
		}
		http.ServeContent(w, r, "model.safetensors", time.Unix(0, 0), bytes.NewReader(content))
	}))
	t.Cleanup(s.Close)
	return s
}

// download runs the images' download helper on this machine.
func download(t *testing.T, url, dest, sha string) (string, error) {
	t.Helper()
	for _, tool := range []string{"bash", "curl", "sha256sum"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("CI=true needs %s", tool)
			}
			t.Skipf("%s is not installed", tool)
		}
	}
	lib := filepath.Join(repoRoot(t), "common", "lib")
	cmd := exec.Command("bash", "-c", `set -euo pipefail
source "$1/log.sh"; source "$1/download.sh"; download_file "$2" "$3" "$4"`,
		"download", lib, url, dest, sha)
	cmd.Env = append(os.Environ(), "HF_TOKEN=")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func TestDownloadRenamesOnlyAVerifiedCompleteFile(t *testing.T) {
	content := bytes.Repeat([]byte("weights "), 50000)
	dest := filepath.Join(t.TempDir(), "models", "unet", "model.safetensors")
	srv := newModelServer(t, content, len(content)/3)

	// An interrupted download leaves only the .part file.
	if out, err := download(t, srv.URL+"/model", dest, sum(content)); err == nil {
		t.Fatalf("an interrupted download succeeded:\n%s", out)
	}
	if _, err := os.Stat(dest); !os.IsNotExist(err) {
		t.Fatalf("an interrupted download left %s under the final name", dest)
	}
	part, err := os.Stat(dest + ".part")
	if err != nil || part.Size() == 0 {
		t.Fatalf("an interrupted download kept no .part file to resume from: %v", err)
	}

	// The next run resumes from where it stopped and renames the verified file.
	if out, err := download(t, srv.URL+"/model", dest, sum(content)); err != nil {
		t.Fatalf("resuming failed: %v\n%s", err, out)
	}
	got, err := os.ReadFile(dest)
	if err != nil || !bytes.Equal(got, content) {
		t.Fatalf("the resumed file differs from the served one (%d of %d bytes): %v",
			len(got), len(content), err)
	}
	if _, err := os.Stat(dest + ".part"); !os.IsNotExist(err) {
		t.Error("the .part file remains after a complete download")
	}
	srv.mu.Lock()
	last := srv.ranges[len(srv.ranges)-1]
	srv.mu.Unlock()
	if last != "bytes="+strconv.Itoa(int(part.Size()))+"-" {
		t.Errorf("the second run asked for range %q, want it to resume at byte %d", last,
			part.Size())
	}

	// A file already in place is not fetched again.
	before := len(srv.ranges)
	if out, err := download(t, srv.URL+"/model", dest, sum(content)); err != nil {
		t.Fatalf("a present file made the helper fail: %v\n%s", err, out)
	}
	if len(srv.ranges) != before {
		t.Error("a file already present was downloaded again")
	}
}

func TestDownloadRejectsAWrongChecksum(t *testing.T) {
	content := []byte("not the expected weights")
	dest := filepath.Join(t.TempDir(), "model.safetensors")
	srv := newModelServer(t, content, 0)

	out, err := download(t, srv.URL+"/model", dest, sum([]byte("other")))
	if err == nil {
		t.Fatalf("a checksum mismatch succeeded:\n%s", out)
	}
	if !strings.Contains(out, "checksum mismatch") {
		t.Errorf("the log does not say the checksum did not match:\n%s", out)
	}
	for _, p := range []string{dest, dest + ".part"} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s exists after a checksum mismatch", filepath.Base(p))
		}
	}
}

func TestDownloadRefusesAnEmptyFile(t *testing.T) {
	dest := filepath.Join(t.TempDir(), "model.safetensors")
	srv := newModelServer(t, nil, 0)
	if out, err := download(t, srv.URL+"/model", dest, ""); err == nil {
		t.Fatalf("an empty download succeeded:\n%s", out)
	}
	if _, err := os.Stat(dest); !os.IsNotExist(err) {
		t.Error("an empty download was saved under the final name")
	}
}
