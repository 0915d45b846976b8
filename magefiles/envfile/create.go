package envfile

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/joho/godotenv"
)

// Created tells what CreateFromExample wrote. It never holds values.
type Created struct {
	Path      string
	Generated []string // password-like keys that received a random value
	Missing   []string // keys still empty, for the user to fill in
}

// passwordWords mark a value the project may invent itself (a password for Jupyter, a secret
// that signs sessions), unlike a token or key issued by an outside service.
var passwordWords = map[string]bool{"password": true, "passwd": true, "pass": true,
	"secret": true}

// outsideWords mark credentials another service issues, which a random value cannot replace.
var outsideWords = map[string]bool{"token": true, "key": true, "apikey": true, "client": true,
	"api": true, "access": true}

// IsGeneratable reports whether an empty value of key may be filled with a random one:
// JUPYTER_PASSWORD or SESSION_SECRET, but not HF_TOKEN, API_KEY or AWS_SECRET_ACCESS_KEY.
func IsGeneratable(key string) bool {
	found := false
	for _, w := range nameWords(key) {
		if outsideWords[w] {
			return false
		}
		if passwordWords[w] || strings.HasSuffix(w, "password") ||
			strings.HasSuffix(w, "passwd") {
			found = true
		}
	}
	return found
}

// CreateFromExample writes target from example with mode 0600, keeping the example's comments,
// order and formatting, and fills the empty values of password-like keys with random ones.
// It refuses to overwrite an existing target.
func CreateFromExample(example, target string) (Created, error) {
	created := Created{Path: target}
	raw, err := os.ReadFile(example)
	if err != nil {
		return created, fmt.Errorf("reading env example: %w", err)
	}

	// Find the assignments with empty values.
	src := normalize(raw)
	stmts, err := scan(example, src)
	if err != nil {
		return created, err
	}
	var out bytes.Buffer
	last := 0
	for _, s := range stmts {
		if s.valStart != s.valEnd || !IsGeneratable(s.key) {
			continue
		}
		value, err := randomValue()
		if err != nil {
			return created, err
		}
		out.Write(src[last:s.valStart])
		out.WriteString(value)
		last = s.valStart
		created.Generated = appendOnce(created.Generated, s.key)
	}
	out.Write(src[last:])
	content := out.Bytes()
	if bytes.Contains(raw, []byte("\r\n")) {
		content = bytes.ReplaceAll(content, []byte("\n"), []byte("\r\n"))
	}

	// Whatever is still empty after the last assignment needs the user.
	values, err := godotenv.UnmarshalBytes(normalize(content))
	if err != nil {
		return created, fmt.Errorf("%s: %v", example, err)
	}
	for _, s := range stmts {
		if values[s.key] == "" {
			created.Missing = appendOnce(created.Missing, s.key)
		}
	}

	// Write without ever replacing a file the user may have filled in.
	if err := os.MkdirAll(filepath.Dir(target), 0o700); err != nil {
		return created, fmt.Errorf("creating env file: %w", err)
	}
	file, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return created, fmt.Errorf("env file %s exists already; it is not overwritten", target)
	}
	if err != nil {
		return created, fmt.Errorf("creating env file: %w", err)
	}
	if _, err := file.Write(content); err != nil {
		file.Close()
		os.Remove(target)
		return created, fmt.Errorf("writing env file %s: %w", target, err)
	}
	if err := file.Close(); err != nil {
		os.Remove(target)
		return created, fmt.Errorf("writing env file %s: %w", target, err)
	}
	return created, nil
}

// randomValue is 32 hex characters (128 bits): no quoting needed anywhere it lands.
func randomValue() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generating a password: %w", err)
	}
	return hex.EncodeToString(b), nil
}

func appendOnce(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}
