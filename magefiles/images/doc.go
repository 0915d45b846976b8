// Package images holds the tests of the image tags (runpod-<tag>/ and the shared common/
// folder): shellcheck on every script, a Dockerfile check, and container tests that run each
// tag's real supervisord configuration and scripts next to stand-ins for the heavy apps.
package images
