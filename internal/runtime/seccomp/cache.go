package seccomp

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	goruntime "runtime"
	"sort"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// compilerVersion is part of every cache key: change it whenever the
// compiler's output for a profile changes.
const compilerVersion = "cove-seccomp-1"

// cacheMagic starts every cache file.
var cacheMagic = []byte("cove-seccomp-filter\n")

// Cache keeps compiled filters as files in Dir, one per profile, named by
// the sha256 of the profile's JSON, the architecture, the compiler version
// and the syscall tables. Files are written atomically (rename); a file
// that fails its checksum or validation is ignored and rewritten. It keeps
// at most MaxEntries files (DefaultMaxEntries when 0), dropping the oldest.
type Cache struct {
	Dir        string
	MaxEntries int
}

// DefaultMaxEntries bounds a cache: profiles differ per capability set and
// engine, not per container, so a few dozen cover a host.
const DefaultMaxEntries = 64

// Key returns the cache key of a profile.
func Key(s *specs.LinuxSeccomp) (string, error) {
	b, err := json.Marshal(s)
	if err != nil {
		return "", fmt.Errorf("seccomp cache key: %w", err)
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00", compilerVersion, tablesDigest, goruntime.GOARCH)
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Result says where a filter came from.
type Result int

// Results of Cache.Compile.
const (
	Compiled  Result = iota // no usable entry: compiled and stored
	Cached                  // read from the cache
	Recovered               // the entry was corrupt: compiled and replaced
)

// Compile returns the filter for s from the cache, or compiles and stores
// it. A cache that cannot be written is not an error: the filter is
// returned all the same.
func (c *Cache) Compile(s *specs.LinuxSeccomp) (*Filter, Result, error) {
	key, err := Key(s)
	if err != nil {
		return nil, Compiled, err
	}
	path := filepath.Join(c.Dir, key)
	res := Compiled
	if b, err := os.ReadFile(path); err == nil {
		if f, err := decodeEntry(b); err == nil {
			return f, Cached, nil
		}
		res = Recovered
	}
	f, err := Compile(s)
	if err != nil {
		return nil, res, err
	}
	if b, err := encodeEntry(f); err == nil {
		// Best effort: a missing entry is only recompiled.
		if writeAtomic(path, b) == nil {
			c.prune()
		}
	}
	return f, res, nil
}

// prune removes the oldest entries beyond the limit, and temporary files
// left by a crash.
func (c *Cache) prune() {
	limit := c.MaxEntries
	if limit <= 0 {
		limit = DefaultMaxEntries
	}
	ents, err := os.ReadDir(c.Dir)
	if err != nil || len(ents) <= limit {
		return
	}
	type entry struct {
		name string
		mod  int64
	}
	var es []entry
	for _, e := range ents {
		fi, err := e.Info()
		if err != nil {
			continue
		}
		es = append(es, entry{e.Name(), fi.ModTime().UnixNano()})
	}
	sort.Slice(es, func(i, j int) bool { return es[i].mod < es[j].mod })
	for _, e := range es[:max(0, len(es)-limit)] {
		os.Remove(filepath.Join(c.Dir, e.name))
	}
}

// Path returns where the entry of s is (or would be) stored.
func (c *Cache) Path(s *specs.LinuxSeccomp) (string, error) {
	key, err := Key(s)
	if err != nil {
		return "", err
	}
	return filepath.Join(c.Dir, key), nil
}

// encodeEntry lays out: magic, flags (u32), notify (u8), program, sha256
// of all that.
func encodeEntry(f *Filter) ([]byte, error) {
	prog, err := f.Program.MarshalBinary()
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.Write(cacheMagic)
	binary.Write(&b, binary.LittleEndian, uint32(f.Flags))
	if f.Notify {
		b.WriteByte(1)
	} else {
		b.WriteByte(0)
	}
	b.Write(prog)
	sum := sha256.Sum256(b.Bytes())
	b.Write(sum[:])
	return b.Bytes(), nil
}

func decodeEntry(b []byte) (*Filter, error) {
	head := len(cacheMagic) + 5
	if len(b) < head+sha256.Size || !bytes.HasPrefix(b, cacheMagic) {
		return nil, errors.New("seccomp cache entry: bad header")
	}
	body, sum := b[:len(b)-sha256.Size], b[len(b)-sha256.Size:]
	if want := sha256.Sum256(body); !bytes.Equal(want[:], sum) {
		return nil, errors.New("seccomp cache entry: checksum mismatch")
	}
	f := &Filter{Flags: uint(binary.LittleEndian.Uint32(b[len(cacheMagic):]))}
	switch b[len(cacheMagic)+4] {
	case 0:
	case 1:
		f.Notify = true
	default:
		return nil, errors.New("seccomp cache entry: bad notify byte")
	}
	if err := f.Program.UnmarshalBinary(body[head:]); err != nil {
		return nil, fmt.Errorf("seccomp cache entry: %w", err)
	}
	return f, nil
}

// writeAtomic writes a temporary file next to path and renames it over.
func writeAtomic(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	_, werr := tmp.Write(b)
	if cerr := tmp.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(tmp.Name(), path)
	}
	if werr != nil {
		os.Remove(tmp.Name())
	}
	return werr
}
