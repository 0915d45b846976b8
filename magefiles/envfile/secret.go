package envfile

import (
	"bytes"
	"io"
	"sort"
	"strings"
	"sync"
	"unicode"
)

// Masked is what a secret value is shown as.
const Masked = "****"

// secretWords are name words that mark a value as secret wherever they stand in the name.
var secretWords = map[string]bool{
	"token": true, "tokens": true, "password": true, "passwd": true, "pass": true,
	"passphrase": true, "secret": true, "secrets": true, "key": true, "keys": true,
	"apikey": true, "privkey": true, "credential": true, "credentials": true, "creds": true,
	"auth": true, "private": true,
}

// secretSuffixes catch words run together (HFTOKEN, DBPASSWORD) without catching harmless
// words that merely end in "key" (MONKEY, HOCKEY).
var secretSuffixes = []string{"token", "password", "passwd", "secret", "apikey"}

// IsSecret reports whether a variable's value must never be shown: names with a word such as
// TOKEN, PASSWORD, SECRET, KEY, CREDENTIALS, AUTH or PRIVATE (HF_TOKEN, API_KEY,
// AWS_SECRET_ACCESS_KEY, JUPYTER_PASSWORD), but not names that only contain those letters
// (MONKEY, KEYBOARD_LAYOUT, AUTHOR).
func IsSecret(key string) bool {
	for _, w := range nameWords(key) {
		if secretWords[w] {
			return true
		}
		for _, s := range secretSuffixes {
			if strings.HasSuffix(w, s) {
				return true
			}
		}
	}
	return false
}

// nameWords splits a variable name into lowercase words at '_', '.', '-' and camelCase humps.
func nameWords(key string) []string {
	var words []string
	var cur []rune
	runes := []rune(key)
	flush := func() {
		if len(cur) > 0 {
			words = append(words, strings.ToLower(string(cur)))
			cur = cur[:0]
		}
	}
	for i, r := range runes {
		switch {
		case !unicode.IsLetter(r) && !unicode.IsDigit(r):
			flush()
			continue
		case unicode.IsUpper(r) && i > 0 && unicode.IsLower(runes[i-1]):
			flush() // apiKey, hfToken
		}
		cur = append(cur, r)
	}
	flush()
	return words
}

// Mask returns the value as it may be shown: Masked for a non-empty secret, the value otherwise.
// An empty secret stays empty, so a user can see that it is unset.
func Mask(key, value string) string {
	if value != "" && IsSecret(key) {
		return Masked
	}
	return value
}

// minRedact is the shortest value redacted in free text; shorter ones would mask common words
// and numbers everywhere while protecting little.
const minRedact = 4

// Redactor replaces the values of secrets in text.
type Redactor struct {
	replacer *strings.Replacer
}

// Redactor returns a redactor for the secret values of the file.
func (f *File) Redactor() *Redactor {
	var secrets []string
	for _, k := range f.Keys {
		if IsSecret(k) {
			secrets = append(secrets, f.Values[k])
		}
	}
	return NewRedactor(secrets...)
}

// NewRedactor returns a redactor for the given secret values. A value spanning several lines
// (a private key) is also redacted line by line, because logs are redacted a line at a time.
func NewRedactor(secrets ...string) *Redactor {
	set := map[string]bool{}
	for _, s := range secrets {
		if len(s) >= minRedact {
			set[s] = true
		}
		if strings.ContainsAny(s, "\r\n") {
			for _, line := range strings.FieldsFunc(s, func(r rune) bool {
				return r == '\n' || r == '\r'
			}) {
				if line = strings.TrimSpace(line); len(line) >= minRedact {
					set[line] = true
				}
			}
		}
	}
	list := make([]string, 0, len(set))
	for s := range set {
		list = append(list, s)
	}
	// Longest first: the replacer tries patterns in argument order, so a secret that contains
	// another is masked whole.
	sort.Slice(list, func(i, j int) bool {
		if len(list[i]) != len(list[j]) {
			return len(list[i]) > len(list[j])
		}
		return list[i] < list[j]
	})
	r := &Redactor{}
	if len(list) > 0 {
		pairs := make([]string, 0, 2*len(list))
		for _, s := range list {
			pairs = append(pairs, s, Masked)
		}
		r.replacer = strings.NewReplacer(pairs...)
	}
	return r
}

// Redact returns s with every secret value replaced by Masked.
func (r *Redactor) Redact(s string) string {
	if r == nil || r.replacer == nil {
		return s
	}
	return r.replacer.Replace(s)
}

// maxPending bounds how much of a line without an end the writer holds back; past it the text
// is redacted and passed on, so a secret split exactly there could leak. Logs that long without
// a line end are rare, and holding them would stall a live view.
const maxPending = 64 << 10

// Writer is an io.Writer that redacts a stream a line at a time. Text after the last line end
// is held until the line completes; call Flush (or Close) when the stream ends.
type Writer struct {
	mu      sync.Mutex
	r       *Redactor
	w       io.Writer
	pending []byte
}

// Writer returns a redacting writer in front of w. It is safe for concurrent use.
func (r *Redactor) Writer(w io.Writer) *Writer {
	return &Writer{r: r, w: w}
}

// Write redacts every completed line of p and the held text before it and passes them on.
// "\r" ends a line too, so progress bars keep moving.
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.pending = append(w.pending, p...)
	cut := bytes.LastIndexAny(w.pending, "\n\r") + 1
	if cut == 0 && len(w.pending) > maxPending {
		cut = len(w.pending)
	}
	if cut == 0 {
		return len(p), nil
	}
	out := w.r.Redact(string(w.pending[:cut]))
	w.pending = append(w.pending[:0], w.pending[cut:]...)
	if _, err := io.WriteString(w.w, out); err != nil {
		return len(p), err
	}
	return len(p), nil
}

// Flush redacts and passes on the held text of an unfinished last line.
func (w *Writer) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.pending) == 0 {
		return nil
	}
	out := w.r.Redact(string(w.pending))
	w.pending = w.pending[:0]
	_, err := io.WriteString(w.w, out)
	return err
}

// Close flushes; it does not close the writer underneath.
func (w *Writer) Close() error { return w.Flush() }
