package engine

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/moby/moby/api/types/jsonstream"
	"github.com/moby/moby/api/types/registry"
	"github.com/moby/moby/client"
	"github.com/moby/moby/client/pkg/jsonmessage"
	"github.com/sirupsen/logrus"
)

// PushAuth holds the credentials for one registry. Printing it never shows the password.
type PushAuth struct {
	Registry      string // host as image names spell it: docker.io, 127.0.0.1:5000
	Username      string
	Password      string
	IdentityToken string // OAuth refresh token that docker login may store instead of a password
	Source        string // where the credentials came from, for messages; empty when there are none
}

// Anonymous tells whether there are no credentials at all.
func (a PushAuth) Anonymous() bool { return a.Password == "" && a.IdentityToken == "" }

// String describes the credentials without their secret part.
func (a PushAuth) String() string {
	if a.Anonymous() {
		return fmt.Sprintf("no credentials for %s", a.Registry)
	}
	return fmt.Sprintf("user %s at %s (from %s)", a.Username, a.Registry, a.Source)
}

// GoString keeps %#v from printing the password too.
func (a PushAuth) GoString() string { return "engine.PushAuth{" + a.String() + "}" }

// ErrCredentialsRefused marks a push whose credentials the registry rejected.
var ErrCredentialsRefused = errors.New("registry refused the credentials")

// pushRefusedError is the one line a user sees for rejected or missing credentials.
type pushRefusedError struct{ auth PushAuth }

func (e pushRefusedError) Error() string {
	if e.auth.Anonymous() {
		return fmt.Sprintf("registry %s asks for credentials: set REGISTRY_USERNAME/"+
			"REGISTRY_PASSWORD or docker login", e.auth.Registry)
	}
	return fmt.Sprintf("registry %s refused the credentials for user %s: check "+
		"REGISTRY_USERNAME/REGISTRY_PASSWORD or docker login", e.auth.Registry, e.auth.Username)
}

func (e pushRefusedError) Is(target error) bool { return target == ErrCredentialsRefused }

// RegistryHost names the registry an image reference points to: docker.io for a short name
// like migdrp/runpod:comfyui, the host part otherwise (127.0.0.1:5000/test/x:1).
func RegistryHost(image string) (string, error) {
	named, err := reference.ParseNormalizedNamed(image)
	if err != nil {
		return "", fmt.Errorf("image name %q: %w", image, err)
	}
	return reference.Domain(named), nil
}

// Tag gives the local image source the additional name target.
func (e *Engine) Tag(ctx context.Context, source, target string) error {
	_, err := e.API.ImageTag(ctx, client.ImageTagOptions{Source: source, Target: target})
	if err != nil {
		return fmt.Errorf("tagging %s as %s: %w", source, target, err)
	}
	return nil
}

// Push uploads the local image to its registry with auth, streaming progress to out like
// docker push. Credentials are checked with the registry first, so a wrong password fails
// before any layer is sent, with one line that says what to check.
func (e *Engine) Push(ctx context.Context, image string, auth PushAuth, out io.Writer) error {
	if auth.Registry == "" {
		host, err := RegistryHost(image)
		if err != nil {
			return err
		}
		auth.Registry = host
	}

	// Only a built image can be pushed.
	if _, err := e.API.ImageInspect(ctx, image); err != nil {
		if IsNotFound(err) {
			return fmt.Errorf("pushing %s: no such local image; build it first", image)
		}
		return fmt.Errorf("pushing %s: %w", image, err)
	}

	// Check the password before uploading anything.
	if auth.Password != "" {
		_, err := e.API.RegistryLogin(ctx, client.RegistryLoginOptions{
			Username: auth.Username, Password: auth.Password, ServerAddress: auth.Registry})
		if err != nil {
			if pushIsRefusal(err) {
				return pushRefusedError{auth}
			}
			return fmt.Errorf("logging in to %s as %s: %s", auth.Registry, auth.Username,
				firstLine(err))
		}
	}

	// Upload, showing the engine's progress.
	header, err := pushHeader(auth)
	if err != nil {
		return err
	}
	logrus.Infof("pushing %s (%s)", image, auth)
	resp, err := e.API.ImagePush(ctx, image, client.ImagePushOptions{RegistryAuth: header})
	if err != nil {
		if pushIsRefusal(err) {
			return pushRefusedError{auth}
		}
		return fmt.Errorf("pushing %s: %w", image, err)
	}
	defer resp.Close()
	var digest string
	err = jsonmessage.DisplayMessages(resp.JSONMessages(ctx), out,
		jsonmessage.WithAuxCallback(func(m jsonstream.Message) {
			var aux struct{ Digest string }
			if m.Aux != nil && json.Unmarshal(*m.Aux, &aux) == nil && aux.Digest != "" {
				digest = aux.Digest
			}
		}))
	if err != nil {
		if pushIsRefusal(err) {
			return pushRefusedError{auth}
		}
		return fmt.Errorf("pushing %s: %s", image, firstLine(err))
	}
	logrus.Infof("pushed %s (digest %s)", image, digest)
	return nil
}

// pushIsRefusal tells whether err is a registry saying no to the credentials. The engine passes
// the registry's answer on as text inside the progress stream, so the text is matched as well.
func pushIsRefusal(err error) bool {
	if cerrdefs.IsUnauthorized(err) || cerrdefs.IsPermissionDenied(err) {
		return true
	}
	s := strings.ToLower(err.Error())
	for _, sign := range []string{"unauthorized", "authentication required",
		"no basic auth credentials", "incorrect username or password",
		"denied: requested access"} {
		if strings.Contains(s, sign) {
			return true
		}
	}
	return false
}

// pushHeader encodes auth as the X-Registry-Auth value the engine expects; the engine wants
// the header even without credentials, then holding an empty object.
func pushHeader(auth PushAuth) (string, error) {
	if auth.Anonymous() {
		return base64.URLEncoding.EncodeToString([]byte("{}")), nil
	}
	b, err := json.Marshal(registry.AuthConfig{
		Username:      auth.Username,
		Password:      auth.Password,
		IdentityToken: auth.IdentityToken,
		ServerAddress: auth.Registry,
	})
	if err != nil {
		return "", fmt.Errorf("encoding credentials for %s: %w", auth.Registry, err)
	}
	return base64.URLEncoding.EncodeToString(b), nil
}

// ResolvePushAuth finds credentials for registryHost: REGISTRY_USERNAME and REGISTRY_PASSWORD
// when set, else the entry docker login wrote to $DOCKER_CONFIG/config.json (by default
// ~/.docker/config.json). No credentials at all is not an error: public or open registries
// accept anonymous pushes, and the registry says otherwise through Push.
//
// Credential helpers (credsStore, credHelpers) are not called: a registry whose password lives
// in one is reported as an error asking for the environment variables instead.
func ResolvePushAuth(registryHost string) (PushAuth, error) {
	auth := PushAuth{Registry: registryHost}

	// The environment wins, as in CI.
	user, pass := os.Getenv("REGISTRY_USERNAME"), os.Getenv("REGISTRY_PASSWORD")
	switch {
	case user != "" && pass != "":
		auth.Username, auth.Password, auth.Source = user, pass, "REGISTRY_USERNAME/PASSWORD"
		return auth, nil
	case user != "" || pass != "":
		return auth, fmt.Errorf("only one of REGISTRY_USERNAME and REGISTRY_PASSWORD is set: " +
			"set both, or neither to use docker login's credentials")
	}

	// Then what docker login stored.
	path, err := pushConfigPath()
	if err != nil {
		return auth, err
	}
	return pushAuthFromConfig(path, auth)
}

func pushConfigPath() (string, error) {
	if dir := os.Getenv("DOCKER_CONFIG"); dir != "" {
		return filepath.Join(dir, "config.json"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("finding the Docker config file: %w (set DOCKER_CONFIG)", err)
	}
	return filepath.Join(home, ".docker", "config.json"), nil
}

// pushConfigFile holds the parts of the Docker CLI's config file that store credentials.
type pushConfigFile struct {
	Auths map[string]struct {
		Auth          string `json:"auth"`
		Username      string `json:"username"`
		Password      string `json:"password"`
		IdentityToken string `json:"identitytoken"`
	} `json:"auths"`
	CredsStore  string            `json:"credsStore"`
	CredHelpers map[string]string `json:"credHelpers"`
}

func pushAuthFromConfig(path string, auth PushAuth) (PushAuth, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		logrus.Debugf("no %s: pushing to %s without credentials", path, auth.Registry)
		return auth, nil
	}
	if err != nil {
		return auth, fmt.Errorf("reading Docker credentials: %w", err)
	}
	var cfg pushConfigFile
	if err := json.Unmarshal(b, &cfg); err != nil {
		return auth, fmt.Errorf("reading Docker credentials from %s: %w", path, err)
	}

	// Find the entry for the host, however docker login spelled its key. docker login with a
	// credential store leaves an empty entry here.
	want := pushNormalHost(auth.Registry)
	helper := cfg.CredHelpers[auth.Registry]
	stored := false
	for key, entry := range cfg.Auths {
		if pushNormalHost(key) != want {
			continue
		}
		auth.Source = path
		auth.IdentityToken = entry.IdentityToken
		auth.Username, auth.Password = entry.Username, entry.Password
		if entry.Auth != "" {
			raw, err := base64.StdEncoding.DecodeString(entry.Auth)
			if err != nil {
				return auth, fmt.Errorf("%s: the auth of %q is not base64; run docker login %s "+
					"again", path, key, auth.Registry)
			}
			u, p, ok := strings.Cut(string(raw), ":")
			if !ok {
				return auth, fmt.Errorf("%s: the auth of %q is not user:password; run docker "+
					"login %s again", path, key, auth.Registry)
			}
			auth.Username, auth.Password = u, p
		}
		if !auth.Anonymous() {
			return auth, nil
		}
		stored = true
	}

	// Passwords kept by a credential helper are out of reach.
	if helper == "" && stored {
		helper = cfg.CredsStore
	}
	if helper != "" {
		return PushAuth{Registry: auth.Registry}, fmt.Errorf("credentials for %s are kept by "+
			"docker-credential-%s, which this tool does not call: set REGISTRY_USERNAME and "+
			"REGISTRY_PASSWORD instead", auth.Registry, helper)
	}
	logrus.Debugf("no credentials for %s in %s: pushing without", auth.Registry, path)
	return PushAuth{Registry: auth.Registry}, nil
}

// pushNormalHost reduces a registry address to its host, mapping Docker Hub's many names to one.
func pushNormalHost(s string) string {
	s = strings.TrimPrefix(strings.TrimPrefix(strings.ToLower(s), "https://"), "http://")
	s, _, _ = strings.Cut(s, "/")
	switch s {
	case "docker.io", "index.docker.io", "registry-1.docker.io":
		return "docker.io"
	}
	return s
}
