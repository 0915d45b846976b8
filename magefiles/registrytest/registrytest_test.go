package registrytest

import (
	"net/http"
	"testing"
)

func status(t *testing.T, addr, user, pass string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+"/v2/", nil)
	if err != nil {
		t.Fatal(err)
	}
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	return resp.StatusCode
}

func TestStartWithAuthChecksThePassword(t *testing.T) {
	addr, user, pass := Start(t, true)
	if user == "" || pass == "" {
		t.Fatal("no credentials returned")
	}
	for _, c := range []struct {
		user, pass string
		want       int
	}{
		{"", "", http.StatusUnauthorized},
		{user, pass + "x", http.StatusUnauthorized},
		{user, pass, http.StatusOK},
	} {
		if got := status(t, addr, c.user, c.pass); got != c.want {
			t.Errorf("user %q: status %d, want %d", c.user, got, c.want)
		}
	}
}

func TestStartWithoutAuthIsOpen(t *testing.T) {
	addr, user, _ := Start(t, false)
	if user != "" {
		t.Errorf("user %q returned for a registry without auth", user)
	}
	if got := status(t, addr, "", ""); got != http.StatusOK {
		t.Errorf("status %d, want 200", got)
	}
}
