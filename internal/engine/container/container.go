// Package container stores cove's container records: one directory per
// container under <root>/containers/<id>, with its configuration
// (config.json), exit record (exit.json, written by the supervisor) and log;
// names are claimed race-free by creating <root>/containers/names/<name>
// with O_EXCL, so two `cove run --name x` at once create exactly one.
package container

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"
)

var (
	// ErrNotFound means no container has the given id, prefix or name.
	ErrNotFound = errors.New("no such container")
	// ErrNameInUse means another container holds the name.
	ErrNameInUse = errors.New("container name already in use")
	// ErrAmbiguous means an id prefix matches several containers.
	ErrAmbiguous = errors.New("ambiguous container id prefix")
)

var nameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

// Record is what the store keeps about one container: how it was created.
// Runtime state (running, exited) is derived from files the supervisor
// and the runtime keep (see the engine).
type Record struct {
	ID          string            `json:"id"`
	Name        string            `json:"name"`
	Image       string            `json:"image"`   // name the user gave
	ImageID     string            `json:"imageID"` // config digest
	ChainID     string            `json:"chainID"` // top layer snapshot
	Created     time.Time         `json:"created"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Args        []string          `json:"args"` // resolved entrypoint + cmd
	// Options is the engine's run options, opaque to this package.
	Options json.RawMessage `json:"options,omitempty"`
}

// Exit is the record the supervisor writes when the container's process exits.
type Exit struct {
	Code       int       `json:"code"`
	FinishedAt time.Time `json:"finishedAt"`
	Signal     int       `json:"signal,omitempty"`
	OOMKilled  bool      `json:"oomKilled,omitempty"`
}

// Store is the container directory of one --root.
type Store struct {
	dir string
}

// Open opens (creating) the container store in dir.
func Open(dir string) (*Store, error) {
	if err := os.MkdirAll(filepath.Join(dir, "names"), 0o700); err != nil {
		return nil, fmt.Errorf("create container store %s: %w", dir, err)
	}
	return &Store{dir: dir}, nil
}

// Dir returns the store's directory.
func (s *Store) Dir() string { return s.dir }

// Path returns the directory of container id.
func (s *Store) Path(id string) string { return filepath.Join(s.dir, id) }

// LogPath is the container's JSON-lines log file.
func (s *Store) LogPath(id string) string { return filepath.Join(s.dir, id, "ctr.log") }

// ExitPath is the exit record the supervisor writes.
func (s *Store) ExitPath(id string) string { return filepath.Join(s.dir, id, "exit.json") }

// NewID returns a random 64-hex container id.
func NewID() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b[:])
}

// ValidName reports whether name is a valid container name (docker's rule).
func ValidName(name string) bool { return nameRE.MatchString(name) && len(name) <= 253 }

// RandomName makes a name like docker's adjective_noun.
func RandomName(id string) string {
	adj := []string{"brave", "calm", "eager", "fancy", "gentle", "happy", "jolly", "keen", "lucid", "merry", "nifty", "proud", "quiet", "sharp", "swift", "witty"}
	noun := []string{"otter", "heron", "lynx", "badger", "falcon", "marten", "puffin", "raven", "stoat", "tern", "vole", "wren", "bison", "crane", "egret", "finch"}
	var a, n int
	if len(id) >= 2 {
		a = int(id[0]) % len(adj)
		n = int(id[1]+id[2]) % len(noun)
	}
	return adj[a] + "_" + noun[n] + "_" + id[:6]
}

// Create stores a new record, claiming its name. Exactly one of several
// concurrent Creates with the same name succeeds; the others get
// ErrNameInUse and leave nothing behind.
func (s *Store) Create(r *Record) error {
	if !ValidName(r.Name) {
		return fmt.Errorf("invalid container name %q: must match %s", r.Name, nameRE)
	}
	if err := s.claimName(r.Name, r.ID); err != nil {
		return err
	}
	dir := s.Path(r.ID)
	if err := os.Mkdir(dir, 0o700); err != nil {
		s.releaseName(r.Name, r.ID)
		return fmt.Errorf("create container directory: %w", err)
	}
	if err := s.Put(r); err != nil {
		os.RemoveAll(dir)
		s.releaseName(r.Name, r.ID)
		return err
	}
	return nil
}

func (s *Store) claimName(name, id string) error {
	p := filepath.Join(s.dir, "names", name)
	for range 2 {
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err == nil {
			_, werr := f.WriteString(id)
			if cerr := f.Close(); werr == nil {
				werr = cerr
			}
			if werr != nil {
				os.Remove(p)
				return fmt.Errorf("claim name %s: %w", name, werr)
			}
			return nil
		}
		if !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("claim name %s: %w", name, err)
		}
		// A name whose container directory is gone is stale (a crash
		// between claim and record): take it over.
		owner, rerr := os.ReadFile(p)
		if rerr != nil || len(owner) == 0 {
			// Being written right now, or unreadable: in use.
			return fmt.Errorf("%w: %q", ErrNameInUse, name)
		}
		if _, err := os.Stat(filepath.Join(s.dir, string(owner), "config.json")); err == nil {
			return fmt.Errorf("%w: %q is used by %s", ErrNameInUse, name, string(owner)[:12])
		}
		if info, err := os.Stat(p); err == nil && time.Since(info.ModTime()) < 10*time.Second {
			return fmt.Errorf("%w: %q", ErrNameInUse, name)
		}
		os.Remove(p)
	}
	return fmt.Errorf("%w: %q", ErrNameInUse, name)
}

func (s *Store) releaseName(name, id string) {
	p := filepath.Join(s.dir, "names", name)
	if owner, err := os.ReadFile(p); err == nil && string(owner) == id {
		os.Remove(p)
	}
}

// Put rewrites r's config.json atomically.
func (s *Store) Put(r *Record) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encode container %s: %w", r.ID, err)
	}
	return WriteFileAtomic(filepath.Join(s.Path(r.ID), "config.json"), b, 0o600)
}

// Get reads the record of the container with exactly this id.
func (s *Store) Get(id string) (*Record, error) {
	b, err := os.ReadFile(filepath.Join(s.Path(id), "config.json"))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%w: %s", ErrNotFound, id)
		}
		return nil, fmt.Errorf("read container %s: %w", id, err)
	}
	var r Record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("decode container %s: %w", id, err)
	}
	return &r, nil
}

// Lookup finds a container by full id, name, or unique id prefix.
func (s *Store) Lookup(arg string) (*Record, error) {
	if arg == "" {
		return nil, fmt.Errorf("%w: empty name", ErrNotFound)
	}
	if len(arg) == 64 {
		if r, err := s.Get(arg); err == nil {
			return r, nil
		}
	}
	if ValidName(arg) {
		if id, err := os.ReadFile(filepath.Join(s.dir, "names", arg)); err == nil && len(id) == 64 {
			if r, err := s.Get(string(id)); err == nil && r.Name == arg {
				return r, nil
			}
		}
	}
	if !isHex(arg) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, arg)
	}
	ids, err := s.IDs()
	if err != nil {
		return nil, err
	}
	var match string
	for _, id := range ids {
		if strings.HasPrefix(id, arg) {
			if match != "" {
				return nil, fmt.Errorf("%w: %s", ErrAmbiguous, arg)
			}
			match = id
		}
	}
	if match == "" {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, arg)
	}
	return s.Get(match)
}

func isHex(s string) bool {
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return s != ""
}

// IDs lists the ids of all stored containers.
func (s *Store) IDs() ([]string, error) {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	var ids []string
	for _, e := range ents {
		if len(e.Name()) == 64 && isHex(e.Name()) {
			ids = append(ids, e.Name())
		}
	}
	return ids, nil
}

// List returns every record, newest first. Records half-written or
// half-removed by a crash are skipped.
func (s *Store) List() ([]*Record, error) {
	ids, err := s.IDs()
	if err != nil {
		return nil, err
	}
	var out []*Record
	for _, id := range ids {
		r, err := s.Get(id)
		if err != nil {
			continue
		}
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Created.After(out[j].Created) })
	return out, nil
}

// Rename gives container r the new name, atomically claimed.
func (s *Store) Rename(r *Record, name string) error {
	if err := s.claimName(name, r.ID); err != nil {
		return err
	}
	old := r.Name
	r.Name = name
	if err := s.Put(r); err != nil {
		r.Name = old
		s.releaseName(name, r.ID)
		return err
	}
	s.releaseName(old, r.ID)
	return nil
}

// Remove deletes a container's record, log and name. The record file goes
// first, so a crash part-way leaves a directory List ignores and Prune
// removes.
func (s *Store) Remove(r *Record) error {
	dir := s.Path(r.ID)
	if err := os.Remove(filepath.Join(dir, "config.json")); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove container %s: %w", r.ID, err)
	}
	s.releaseName(r.Name, r.ID)
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove container %s: %w", r.ID, err)
	}
	return nil
}

// Leftovers lists directories without a record (a crash during create or
// remove) and name files whose container is gone.
func (s *Store) Leftovers() (dirs, names []string, err error) {
	ids, err := s.IDs()
	if err != nil {
		return nil, nil, err
	}
	for _, id := range ids {
		if _, err := os.Stat(filepath.Join(s.Path(id), "config.json")); errors.Is(err, os.ErrNotExist) {
			dirs = append(dirs, id)
		}
	}
	ents, err := os.ReadDir(filepath.Join(s.dir, "names"))
	if err != nil {
		return nil, nil, fmt.Errorf("list names: %w", err)
	}
	for _, e := range ents {
		p := filepath.Join(s.dir, "names", e.Name())
		owner, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		if _, err := os.Stat(filepath.Join(s.dir, string(owner), "config.json")); err != nil {
			if info, err := os.Stat(p); err == nil && time.Since(info.ModTime()) > 10*time.Second {
				names = append(names, e.Name())
			}
		}
	}
	return dirs, names, nil
}

// RemoveLeftovers deletes what Leftovers found.
func (s *Store) RemoveLeftovers(dirs, names []string) error {
	var errs []error
	for _, d := range dirs {
		errs = append(errs, os.RemoveAll(s.Path(d)))
	}
	for _, n := range names {
		errs = append(errs, os.Remove(filepath.Join(s.dir, "names", n)))
	}
	return errors.Join(errs...)
}

// ReadExit reads the exit record of container id; ok is false when there
// is none.
func (s *Store) ReadExit(id string) (e Exit, ok bool, err error) {
	b, err := os.ReadFile(s.ExitPath(id))
	if errors.Is(err, os.ErrNotExist) {
		return e, false, nil
	}
	if err != nil {
		return e, false, fmt.Errorf("read exit of %s: %w", id, err)
	}
	if err := json.Unmarshal(b, &e); err != nil {
		return e, false, fmt.Errorf("decode exit of %s: %w", id, err)
	}
	return e, true, nil
}

// WriteFileAtomic writes data to a temporary file beside path, syncs it and
// renames it into place.
func WriteFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	_, werr := tmp.Write(data)
	if werr == nil {
		werr = tmp.Chmod(mode)
	}
	if werr == nil {
		werr = tmp.Sync()
	}
	if cerr := tmp.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(tmp.Name(), path)
	}
	if werr != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("write %s: %w", path, werr)
	}
	return nil
}
