// Package envfile reads the env file of a tag (envs/runpod-<tag>.env), creates it from its
// committed example, and keeps the values of secrets out of anything a user or a log sees.
package envfile

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"unicode"

	"github.com/joho/godotenv"
)

// ExampleSuffix ends the name of the committed template of an env file.
const ExampleSuffix = ".example"

// File is a parsed env file.
type File struct {
	Path   string
	Keys   []string          // in file order; a key set twice keeps its first position
	Values map[string]string // the last assignment wins, as in godotenv
}

// PathFor is where the env file of a tag lives below the repository root.
func PathFor(root, tag string) string {
	return filepath.Join(root, "envs", "runpod-"+tag+".env")
}

// ExamplePath is the committed example beside an env file.
func ExamplePath(path string) string {
	return path + ExampleSuffix
}

// Env returns KEY=VALUE pairs in file order, as a container config wants them.
func (f *File) Env() []string {
	env := make([]string, 0, len(f.Keys))
	for _, k := range f.Keys {
		env = append(env, k+"="+f.Values[k])
	}
	return env
}

// MaskedEnv returns KEY=VALUE pairs in file order with secret values masked, for logs.
func (f *File) MaskedEnv() []string {
	env := make([]string, 0, len(f.Keys))
	for _, k := range f.Keys {
		env = append(env, k+"="+Mask(k, f.Values[k]))
	}
	return env
}

// NotFoundError says an env file does not exist. errors.Is(err, fs.ErrNotExist) holds for it.
type NotFoundError struct {
	Path    string
	Example string // the example beside it, or "" when there is none
}

func (e *NotFoundError) Error() string {
	if e.Example != "" {
		return fmt.Sprintf("env file %s does not exist; create it from %s "+
			"(copy it and fill in the values)", e.Path, e.Example)
	}
	return fmt.Sprintf("env file %s does not exist and there is no %s beside it; "+
		"create it with one KEY=VALUE per line", e.Path, filepath.Base(ExamplePath(e.Path)))
}

// Is lets callers test for a missing file the usual way.
func (e *NotFoundError) Is(target error) bool { return target == fs.ErrNotExist }

// SyntaxError is a malformed line. Its message never quotes the line, which may hold a secret.
type SyntaxError struct {
	Path    string
	Line    int
	Problem string // what is wrong
	Fix     string // what to do about it
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("%s:%d: %s; %s", e.Path, e.Line, e.Problem, e.Fix)
}

// Load reads and parses an env file. Values come from godotenv (quotes, escapes, ${VAR}
// expansion); the file is scanned beforehand so that a malformed line is reported with its line
// number, which godotenv's own errors lack.
func Load(path string) (*File, error) {
	src, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		nf := &NotFoundError{Path: path}
		if _, err := os.Stat(ExamplePath(path)); err == nil {
			nf.Example = ExamplePath(path)
		}
		return nil, nf
	}
	if err != nil {
		return nil, fmt.Errorf("reading env file: %w", err)
	}
	return parse(path, src)
}

func parse(path string, src []byte) (*File, error) {
	src = normalize(src)
	stmts, err := scan(path, src)
	if err != nil {
		return nil, err
	}
	values, err := godotenv.UnmarshalBytes(src)
	if err != nil {
		// The scan accepts a subset of godotenv's grammar, so this is not expected; still say
		// which file, without a line we do not know.
		return nil, fmt.Errorf("%s: %v; check the file's quoting", path, err)
	}

	f := &File{Path: path, Values: values}
	seen := map[string]bool{}
	for _, s := range stmts {
		if !seen[s.key] {
			seen[s.key] = true
			f.Keys = append(f.Keys, s.key)
		}
	}
	return f, nil
}

// normalize turns CRLF into LF, as godotenv does before parsing, so offsets agree.
func normalize(src []byte) []byte {
	return bytes.ReplaceAll(src, []byte("\r\n"), []byte("\n"))
}

// statement is one assignment found by scan. Offsets index the normalized source.
type statement struct {
	key      string
	line     int
	valStart int  // first byte of the value, after the opening quote if any
	valEnd   int  // one past the last byte of the raw value, before the closing quote
	quote    byte // '"', '\'' or 0
}

// A name must work as a shell variable in the images' scripts.
var validKey = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.]*$`)

// scan walks the source with godotenv's grammar (comments, optional "export ", KEY=VALUE or
// KEY: VALUE, quoted values that may span lines) and returns the assignments in order, or the
// first malformed line. It is stricter than godotenv where godotenv silently misreads input:
// a last line without "=", names with spaces, and text after a closing quote.
func scan(path string, src []byte) ([]statement, error) {
	lineAt := func(off int) int { return 1 + bytes.Count(src[:off], []byte("\n")) }
	fail := func(off int, problem, fix string) error {
		return &SyntaxError{Path: path, Line: lineAt(off), Problem: problem, Fix: fix}
	}

	var stmts []statement
	pos := 0
	for {
		// Skip blank space and comment lines up to the next statement.
		for pos < len(src) && unicode.IsSpace(rune(src[pos])) {
			pos++
		}
		if pos == len(src) {
			return stmts, nil
		}
		if src[pos] == '#' {
			nl := bytes.IndexByte(src[pos:], '\n')
			if nl < 0 {
				return stmts, nil
			}
			pos += nl
			continue
		}
		start := pos

		// An "export " prefix is allowed so the file can also be sourced by a shell.
		if rest := src[pos:]; bytes.HasPrefix(rest, []byte("export")) && len(rest) > 6 &&
			isSpace(rune(rest[6])) {
			pos += 6
			for pos < len(src) && isSpace(rune(src[pos])) {
				pos++
			}
		}

		// The name runs up to "=" (or ":", which godotenv also accepts).
		keyStart, eq := pos, -1
		for ; pos < len(src); pos++ {
			c := src[pos]
			if c == '=' || c == ':' {
				eq = pos
				break
			}
			if c == '\n' {
				break
			}
		}
		if eq < 0 {
			return nil, fail(start, `no "=" on this line`,
				`write KEY=VALUE, or start the line with "#" to make it a comment`)
		}
		key := string(bytes.TrimRightFunc(src[keyStart:eq], isSpace))
		if err := checkKey(key); err != "" {
			return nil, fail(start, err, "names may hold only letters, digits and '_' and "+
				"must not start with a digit; put spaces and symbols in the value")
		}
		pos = eq + 1
		for pos < len(src) && isSpace(rune(src[pos])) {
			pos++
		}

		// The value: quoted (up to the matching unescaped quote) or the rest of the line.
		st := statement{key: key, line: lineAt(start), valStart: pos}
		if pos < len(src) && (src[pos] == '"' || src[pos] == '\'') {
			st.quote = src[pos]
			st.valStart = pos + 1
			end := -1
			for i := pos + 1; i < len(src); i++ {
				if src[i] == st.quote && src[i-1] != '\\' {
					end = i
					break
				}
			}
			if end < 0 {
				return nil, fail(start, fmt.Sprintf("the quoted value of %s is never closed", key),
					fmt.Sprintf("add the closing %c (a value spans lines only between "+
						"matching quotes)", st.quote))
			}
			st.valEnd = end
			pos = end + 1
			nl := bytes.IndexByte(src[pos:], '\n')
			if nl < 0 {
				nl = len(src) - pos
			}
			trailer := bytes.TrimLeftFunc(src[pos:pos+nl], isSpace)
			if len(trailer) > 0 && trailer[0] != '#' {
				return nil, fail(end, fmt.Sprintf("text after the closing quote of %s", key),
					`move the text inside the quotes, or put "#" before a comment`)
			}
			pos += nl
		} else {
			nl := bytes.IndexByte(src[pos:], '\n')
			if nl < 0 {
				nl = len(src) - pos
			}
			st.valEnd = pos + len(bytes.TrimRightFunc(src[pos:pos+nl], isSpace))
			// godotenv takes "KEY= # note" as the value "# note", never what was meant.
			if st.valEnd > pos && src[pos] == '#' && pos > eq+1 {
				return nil, fail(start, fmt.Sprintf("the value of %s starts with \"#\" after "+
					"a space, which is read as the value, not as a comment", key),
					`put the comment on its own line, or quote the value`)
			}
			pos += nl
		}
		stmts = append(stmts, st)
	}
}

// checkKey says what is wrong with a variable name, or returns "".
func checkKey(key string) string {
	switch {
	case key == "":
		return `no variable name before "="`
	case validKey.MatchString(key):
		return ""
	case bytes.ContainsFunc([]byte(key), unicode.IsSpace):
		return "the variable name contains a space"
	case key[0] >= '0' && key[0] <= '9':
		return "the variable name starts with a digit"
	}
	for _, r := range key {
		if !(r == '_' || r == '.' || r < 128 && (unicode.IsLetter(r) || unicode.IsDigit(r))) {
			return fmt.Sprintf("unexpected character %q in the variable name", r)
		}
	}
	return "invalid variable name"
}

// isSpace is blank space within a line, as godotenv defines it.
func isSpace(r rune) bool {
	switch r {
	case '\t', '\v', '\f', '\r', ' ', 0x85, 0xA0:
		return true
	}
	return false
}
