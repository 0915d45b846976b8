package matrix

import (
	"encoding/json"
	"os"

	"github.com/sirupsen/logrus"
)

// EventFromEnv reads the event of the current GitHub Actions run: GITHUB_EVENT_NAME, the event
// payload at GITHUB_EVENT_PATH (before/after of a push, base/head of a pull request) and
// GITHUB_SHA. MATRIX_BASE and MATRIX_HEAD override the revisions, which also makes the selection
// usable outside GitHub. An unreadable payload leaves the base unknown, so every tag is built.
func EventFromEnv() Event {
	ev := Event{Name: os.Getenv("GITHUB_EVENT_NAME"), Head: os.Getenv("GITHUB_SHA")}

	// The payload carries the revisions the event is about.
	if path := os.Getenv("GITHUB_EVENT_PATH"); path != "" {
		base, head, err := matrixRevisions(ev.Name, path)
		if err != nil {
			logrus.Warnf("reading the %s event payload: %v", ev.Name, err)
		}
		ev.Base = base
		if head != "" {
			ev.Head = head
		}
	}

	// Explicit revisions win.
	if v := os.Getenv("MATRIX_BASE"); v != "" {
		ev.Base = v
	}
	if v := os.Getenv("MATRIX_HEAD"); v != "" {
		ev.Head = v
	}
	return ev
}

// matrixPayload holds the fields of push and pull_request payloads that name revisions.
type matrixPayload struct {
	Before      string `json:"before"`
	After       string `json:"after"`
	PullRequest *struct {
		Base struct {
			SHA string `json:"sha"`
		} `json:"base"`
		Head struct {
			SHA string `json:"sha"`
		} `json:"head"`
	} `json:"pull_request"`
}

// matrixRevisions reads base and head from the payload of event name at path.
func matrixRevisions(name, path string) (base, head string, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", "", err
	}
	var p matrixPayload
	if err := json.Unmarshal(b, &p); err != nil {
		return "", "", err
	}
	switch {
	case p.PullRequest != nil && (name == "pull_request" || name == "pull_request_target"):
		return p.PullRequest.Base.SHA, p.PullRequest.Head.SHA, nil
	case name == "push":
		return p.Before, p.After, nil
	}
	return "", "", nil
}
