package images

import (
	"bytes"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/migdrp/runpod/magefiles/tags"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

// secretKey matches variable names whose values must never be baked into an image.
var secretKey = regexp.MustCompile(
	`(?i)(PASSWORD|PASSWD|TOKEN|SECRET|API_?KEY|PRIVATE_?KEY|CREDENTIAL)`)

// varRef finds $NAME and ${NAME} references in shell text.
var varRef = regexp.MustCompile(`\$\{?([A-Za-z_][A-Za-z0-9_]*)`)

// shaRef finds references to variables that hold a checksum.
var shaRef = regexp.MustCompile(`\$\{?[A-Za-z0-9_]*(?i:SHA256|CHECKSUM)[A-Za-z0-9_]*`)

// segmentSep splits a RUN command into simple commands.
var segmentSep = regexp.MustCompile(`&&|\|\||;|\||\n`)

// overlayFiles are put into every build context by the tool although they are not in the
// repository: the static workspace sync binary.
var overlayFiles = map[string]bool{"common/bin/runpod-workspace": true, "common/bin": true}

// dockerfileProblems checks a tag's Dockerfile for what makes builds reproducible and images
// safe to share: versions pinned through ARGs, no secrets in ARG or ENV defaults, COPY sources
// inside the build context (the tag directory plus the common/ overlay), a health check, ports,
// a base image argument, OCI labels and tini as init. It returns one line per problem.
func dockerfileProblems(src []byte, tagDir, commonDir string) ([]string, error) {
	res, err := parser.Parse(bytes.NewReader(src))
	if err != nil {
		return nil, fmt.Errorf("parsing: %w", err)
	}
	var problems []string
	report := func(n *parser.Node, format string, args ...any) {
		problems = append(problems, fmt.Sprintf("line %d: ", n.StartLine)+
			fmt.Sprintf(format, args...))
	}

	// Collect the ARGs first: a pin must name one that has a default.
	pinned := map[string]bool{}
	for _, n := range res.AST.Children {
		if !strings.EqualFold(n.Value, "arg") {
			continue
		}
		for a := n.Next; a != nil; a = a.Next {
			name, value, hasValue := strings.Cut(a.Value, "=")
			value = strings.Trim(value, `"'`)
			if hasValue && value != "" {
				pinned[name] = true
			}
			if secretKey.MatchString(name) && value != "" {
				report(n, "ARG %s has a default value; secrets must come from the env file", name)
			}
		}
	}

	var sawFrom, sawBaseArg, sawHealth, sawExpose, sawLabel, sawTini bool
	for _, n := range res.AST.Children {
		switch strings.ToLower(n.Value) {
		case "arg":
			if !sawFrom && n.Next != nil && strings.HasPrefix(n.Next.Value, "BASE_IMAGE=") &&
				pinned["BASE_IMAGE"] {
				sawBaseArg = true
			}
		case "from":
			if !sawFrom && (n.Next == nil || !strings.Contains(n.Next.Value, "BASE_IMAGE")) {
				report(n, "the first FROM must use ${BASE_IMAGE}")
			}
			sawFrom = true
		case "env":
			for k := n.Next; k != nil && k.Next != nil; k = k.Next.Next {
				if secretKey.MatchString(k.Value) {
					report(n, "ENV %s would store a secret in the image; pass it at run time",
						k.Value)
				}
			}
		case "run":
			for _, p := range runProblems(runText(n), pinned) {
				report(n, "%s", p)
			}
		case "add":
			for _, src := range copySources(n) {
				if strings.Contains(src, "://") {
					report(n, "ADD %s fetches without a checksum; download in a RUN that "+
						"verifies a sha256 from an ARG", src)
				}
			}
			problems = append(problems, copyProblems(n, tagDir, commonDir)...)
		case "copy":
			problems = append(problems, copyProblems(n, tagDir, commonDir)...)
		case "healthcheck":
			if n.Next != nil && !strings.EqualFold(n.Next.Value, "NONE") {
				sawHealth = true
			}
		case "expose":
			sawExpose = n.Next != nil
		case "label":
			for k := n.Next; k != nil; k = k.Next {
				if strings.HasPrefix(k.Value, "org.opencontainers.image.") {
					sawLabel = true
				}
			}
		case "entrypoint":
			sawTini = strings.Contains(n.Original, "tini")
		}
	}
	missing := []struct {
		ok   bool
		what string
	}{
		{sawBaseArg, "ARG BASE_IMAGE with a pinned default before FROM"},
		{sawHealth, "a HEALTHCHECK asking the app's HTTP endpoint"},
		{sawExpose, "EXPOSE of the service ports"},
		{sawLabel, "OCI labels (org.opencontainers.image.*)"},
		{sawTini, "tini as ENTRYPOINT"},
	}
	for _, m := range missing {
		if !m.ok {
			problems = append(problems, "missing "+m.what)
		}
	}
	return problems, nil
}

// runText is the shell text of a RUN, in shell or exec form.
func runText(n *parser.Node) string {
	var parts []string
	for a := n.Next; a != nil; a = a.Next {
		parts = append(parts, a.Value)
	}
	return strings.Join(parts, " ")
}

// runProblems checks that what one RUN fetches is pinned through an ARG with a default.
func runProblems(cmd string, pinned map[string]bool) []string {
	usesPin := func(s string) bool {
		for _, m := range varRef.FindAllStringSubmatch(s, -1) {
			if pinned[m[1]] {
				return true
			}
		}
		return false
	}
	var problems []string
	var fetchesGit, gitPinned, downloads, verified bool
	for _, seg := range segmentSep.Split(cmd, -1) {
		words := fields(seg)
		if len(words) == 0 {
			continue
		}
		switch {
		case isGit(words):
			sub := gitSubcommand(words)
			if sub == "clone" || sub == "fetch" {
				fetchesGit = true
			}
			if (sub == "fetch" || sub == "checkout" || (sub == "clone" &&
				(contains(words, "--branch") || contains(words, "-b")))) && usesPin(seg) {
				gitPinned = true
			}
		case isPipInstall(words):
			problems = append(problems, pipProblems(words, pinned)...)
		case path.Base(words[0]) == "curl" || path.Base(words[0]) == "wget":
			downloads = true
		case path.Base(words[0]) == "sha256sum":
			verified = true
		}
	}
	// The expected sum usually reaches sha256sum through a pipe, so look at the whole RUN.
	verified = verified && usesPin(strings.Join(shaRef.FindAllString(cmd, -1), " "))
	if fetchesGit && !gitPinned {
		problems = append(problems, "git fetches a repository without a ref from an ARG")
	}
	if downloads && !verified {
		problems = append(problems, "a download is not verified with sha256sum against an ARG")
	}
	return problems
}

// pipValueFlags take a value that is not a package.
var pipValueFlags = map[string]bool{
	"-i": true, "--index-url": true, "--extra-index-url": true, "-f": true,
	"--find-links": true, "-t": true, "--target": true, "--prefix": true, "--root": true,
	"-c": true, "--constraint": true, "--trusted-host": true,
}

// pipProblems checks that every package named on a pip install line is pinned with ==$ARG.
// Requirement files (-r) belong to a pinned checkout and local paths are not fetched.
func pipProblems(words []string, pinned map[string]bool) []string {
	var problems []string
	i := 0
	for i < len(words) && words[i] != "install" {
		i++
	}
	for i++; i < len(words); i++ {
		w := words[i]
		switch {
		case w == "-r" || w == "--requirement" || pipValueFlags[w]:
			i++
		case w == "-e" || w == "--editable":
			i++
			if i < len(words) && !isLocalPath(words[i]) {
				problems = append(problems, "pip install -e "+words[i]+" is not a local path")
			}
		case strings.HasPrefix(w, "-"), isLocalPath(w):
		default:
			_, version, ok := strings.Cut(w, "==")
			m := varRef.FindStringSubmatch(version)
			if !ok || m == nil || !pinned[m[1]] || !strings.HasPrefix(version, "$") {
				problems = append(problems, "pip installs "+w+" without ==${ARG} pinning")
			}
		}
	}
	return problems
}

// copyProblems checks that the sources of a COPY or ADD are inside the build context: the tag
// directory, or common/ which the tool overlays from the repository's top folder.
func copyProblems(n *parser.Node, tagDir, commonDir string) []string {
	for _, f := range n.Flags {
		if strings.HasPrefix(f, "--from") {
			return nil
		}
	}
	var problems []string
	for _, src := range copySources(n) {
		if strings.Contains(src, "://") {
			continue
		}
		clean := path.Clean(src)
		if path.IsAbs(src) || clean == ".." || strings.HasPrefix(clean, "../") {
			problems = append(problems, fmt.Sprintf("line %d: COPY source %s leaves the build "+
				"context", n.StartLine, src))
			continue
		}
		base := filepath.Join(tagDir, filepath.FromSlash(clean))
		if clean == "common" || strings.HasPrefix(clean, "common/") {
			if overlayFiles[clean] {
				continue
			}
			base = filepath.Join(commonDir, filepath.FromSlash(strings.TrimPrefix(
				strings.TrimPrefix(clean, "common"), "/")))
		}
		if matches, _ := filepath.Glob(base); len(matches) == 0 {
			problems = append(problems, fmt.Sprintf("line %d: COPY source %s does not exist "+
				"in the build context", n.StartLine, src))
		}
	}
	return problems
}

// copySources lists the sources of a COPY or ADD (every argument but the destination).
func copySources(n *parser.Node) []string {
	var args []string
	for a := n.Next; a != nil; a = a.Next {
		args = append(args, a.Value)
	}
	if len(args) < 2 {
		return nil
	}
	return args[:len(args)-1]
}

// fields splits a simple command into words and drops the quotes around each.
func fields(seg string) []string {
	words := strings.Fields(seg)
	for i, w := range words {
		words[i] = strings.Trim(w, `"'`)
	}
	return words
}

func isGit(words []string) bool { return path.Base(words[0]) == "git" }

// gitSubcommand skips git's global options (-C dir, -q, -c k=v).
func gitSubcommand(words []string) string {
	for i := 1; i < len(words); i++ {
		switch w := words[i]; {
		case w == "-C" || w == "-c":
			i++
		case strings.HasPrefix(w, "-"):
		default:
			return w
		}
	}
	return ""
}

func isPipInstall(words []string) bool {
	base := path.Base(words[0])
	pip := base == "pip" || base == "pip3" ||
		(strings.HasPrefix(base, "python") && len(words) > 2 && words[1] == "-m" &&
			words[2] == "pip")
	return pip && contains(words, "install")
}

func isLocalPath(w string) bool {
	return w == "." || strings.HasPrefix(w, "./") || strings.HasPrefix(w, "/") ||
		strings.HasPrefix(w, "../") || strings.HasPrefix(w, "$")
}

func contains(words []string, w string) bool {
	for _, x := range words {
		if x == w {
			return true
		}
	}
	return false
}

func TestDockerfilesArePinnedAndSafe(t *testing.T) {
	root := repoRoot(t)
	found, err := tags.Discover(root)
	if err != nil {
		t.Fatal(err)
	}
	if len(found) == 0 {
		t.Fatal("no tag directories found")
	}
	for _, tag := range found {
		t.Run(tag.Name, func(t *testing.T) {
			src, err := os.ReadFile(filepath.Join(tag.Dir, "Dockerfile"))
			if err != nil {
				t.Fatal(err)
			}
			problems, err := dockerfileProblems(src, tag.Dir, filepath.Join(root, "common"))
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range problems {
				t.Errorf("%s/Dockerfile: %s", filepath.Base(tag.Dir), p)
			}
		})
	}
}

// TestDockerfileCheckFindsProblems keeps the check honest: each case is a mistake it must see.
func TestDockerfileCheckFindsProblems(t *testing.T) {
	tagDir := t.TempDir()
	commonDir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(tagDir, "workspace"), 0o755); err != nil {
		t.Fatal(err)
	}
	good := `ARG BASE_IMAGE=debian:bookworm
FROM ${BASE_IMAGE}
ARG APP_REF=v1.0
ARG TOOL_VERSION=2.0
ARG TOOL_SHA256=abc
LABEL org.opencontainers.image.title=x
RUN git clone --branch "${APP_REF}" https://example.com/app.git /opt/app \
    && pip install "tool==${TOOL_VERSION}" -r /opt/app/requirements.txt
RUN curl -fsSLo /tmp/t https://example.com/t && echo "${TOOL_SHA256}  /tmp/t" | sha256sum -c -
COPY workspace/ /workspace_template/
COPY common/bin/runpod-workspace /usr/local/bin/
EXPOSE 8188
HEALTHCHECK CMD curl -f http://127.0.0.1:8188/
ENTRYPOINT ["tini", "--"]
`
	problems, err := dockerfileProblems([]byte(good), tagDir, commonDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(problems) != 0 {
		t.Fatalf("a correct Dockerfile was refused: %v", problems)
	}

	cases := []struct {
		name, from, to, want string
	}{
		{"unpinned clone", `--branch "${APP_REF}" `, "", "without a ref from an ARG"},
		{"clone pinned by an undeclared arg", `"${APP_REF}"`, `"${OTHER}"`,
			"without a ref from an ARG"},
		{"unpinned pip package", `"tool==${TOOL_VERSION}"`, "tool", "tool without"},
		{"pip version not from an arg", `"tool==${TOOL_VERSION}"`, "tool==2.0", "without"},
		{"unverified download", `&& echo "${TOOL_SHA256}  /tmp/t" | sha256sum -c -`, "",
			"not verified"},
		{"secret env", "LABEL", "ENV HF_TOKEN=hf_abc\nLABEL", "ENV HF_TOKEN"},
		{"secret arg default", "ARG APP_REF", "ARG JUPYTER_PASSWORD=admin\nARG APP_REF",
			"JUPYTER_PASSWORD has a default"},
		{"copy outside the context", "COPY workspace/", "COPY ../envs/", "leaves the build"},
		{"copy of a missing file", "COPY workspace/", "COPY scripts/", "does not exist"},
		{"no healthcheck", "HEALTHCHECK CMD curl -f http://127.0.0.1:8188/", "",
			"missing a HEALTHCHECK"},
		{"healthcheck disabled", "HEALTHCHECK CMD curl -f http://127.0.0.1:8188/",
			"HEALTHCHECK NONE", "missing a HEALTHCHECK"},
		{"no expose", "EXPOSE 8188", "", "missing EXPOSE"},
		{"no base image argument", "ARG BASE_IMAGE=debian:bookworm\nFROM ${BASE_IMAGE}",
			"FROM debian:bookworm", "ARG BASE_IMAGE"},
		{"no tini", `ENTRYPOINT ["tini", "--"]`, "", "tini"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			bad := strings.Replace(good, c.from, c.to, 1)
			if bad == good {
				t.Fatalf("case does not change the Dockerfile (%q not found)", c.from)
			}
			problems, err := dockerfileProblems([]byte(bad), tagDir, commonDir)
			if err != nil {
				t.Fatal(err)
			}
			joined := strings.Join(problems, "\n")
			if !strings.Contains(joined, c.want) {
				t.Errorf("want a problem containing %q, got:\n%s", c.want, joined)
			}
		})
	}
}

// healthCommand returns the command of a Dockerfile's HEALTHCHECK.
func healthCommand(t *testing.T, file string) string {
	t.Helper()
	src, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	res, err := parser.Parse(bytes.NewReader(src))
	if err != nil {
		t.Fatalf("parsing %s: %v", file, err)
	}
	for _, n := range res.AST.Children {
		if strings.EqualFold(n.Value, "healthcheck") && n.Next != nil && n.Next.Next != nil {
			return n.Next.Next.Value
		}
	}
	t.Fatalf("%s has no HEALTHCHECK command", file)
	return ""
}

// The container tests prove the health check with a short interval; the command itself must
// be the one the real image runs.
func TestTestImagesCheckHealthLikeTheRealImages(t *testing.T) {
	root := repoRoot(t)
	for _, tag := range []string{"comfyui", "fluxgym"} {
		real := healthCommand(t, filepath.Join(root, "runpod-"+tag, "Dockerfile"))
		test := healthCommand(t, filepath.Join(root, "testdata", "images", tag, "Dockerfile"))
		if real != test {
			t.Errorf("%s: the test image checks health with %q, the real image with %q",
				tag, test, real)
		}
	}
}
