// Package bundle loads and validates an OCI bundle's config.json and writes
// the default spec `cove-runc spec` prints.
package bundle

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// ConfigName is the name of the configuration file in a bundle directory.
const ConfigName = "config.json"

// Load reads <dir>/config.json, decodes it (reporting syntax errors by line
// and column and type errors by field), validates it and returns it with
// Root.Path made absolute: a relative root path is relative to dir. Load also
// checks that the root path is a directory.
func Load(dir string) (*specs.Spec, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("bundle %s: %w", dir, err)
	}
	path := filepath.Join(abs, ConfigName)
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load bundle: %w", err)
	}
	s, err := decode(data)
	if err != nil {
		return nil, fmt.Errorf("%s:%w", path, err)
	}
	if err := Validate(s); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if !filepath.IsAbs(s.Root.Path) {
		s.Root.Path = filepath.Join(abs, s.Root.Path)
	}
	s.Root.Path = filepath.Clean(s.Root.Path)
	st, err := os.Stat(s.Root.Path)
	if err != nil {
		// Quote the path: it comes from the config and may hold anything.
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, fmt.Errorf("%s: root.path: %q: %w", path, s.Root.Path, err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("%s: root.path: %q is not a directory", path, s.Root.Path)
	}
	return s, nil
}

// decode unmarshals a config. Its errors start with "line:column: " so that
// Load can append them to the file name.
func decode(data []byte) (*specs.Spec, error) {
	var s specs.Spec
	err := json.Unmarshal(data, &s)
	if err == nil {
		return &s, nil
	}
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		line, col := position(data, syn.Offset)
		return nil, fmt.Errorf("%d:%d: %w", line, col, err)
	case errors.As(err, &typ):
		line, col := position(data, typ.Offset)
		field := typ.Field
		if field == "" {
			field = "(top level)"
		}
		return nil, fmt.Errorf("%d:%d: %s: cannot use %s as %s: %w", line, col, field, typ.Value, typ.Type, err)
	}
	return nil, fmt.Errorf("0:0: %w", err)
}

// position converts a byte offset of data into a 1-based line and column.
// encoding/json reports offsets just past the offending byte or value.
func position(data []byte, offset int64) (line, col int) {
	if offset > int64(len(data)) {
		offset = int64(len(data))
	}
	if offset < 0 {
		offset = 0
	}
	before := data[:offset]
	line = bytes.Count(before, []byte("\n")) + 1
	col = int(offset) - (bytes.LastIndexByte(before, '\n') + 1)
	if col < 1 {
		col = 1
	}
	return line, col
}
