package snapshot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"cove/internal/engine/archive"
	"cove/internal/flock"
)

// Store is a snapshot store in one directory. Its methods are safe for
// concurrent use by goroutines and by several processes sharing the
// directory: commits and removals are serialised by flock(2) on dir/lock,
// and each unpack in tmp/ is flocked by the process doing it.
type Store struct {
	dir string
	drv driver
	cfg config
}

var (
	chainIDRe = regexp.MustCompile(`^sha256:([a-f0-9]{64})$`)
	keyRe     = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)
)

// chainHex returns the directory name of chainID.
func chainHex(chainID string) (string, error) {
	m := chainIDRe.FindStringSubmatch(chainID)
	if m == nil {
		return "", fmt.Errorf("chain id %q: %w", chainID, ErrInvalid)
	}
	return m[1], nil
}

func checkKey(key string) error {
	if !keyRe.MatchString(key) {
		return fmt.Errorf("key %q: %w", key, ErrInvalid)
	}
	return nil
}

// Open opens (creating) the snapshot store under dir, picking a driver
// (overlay, btrfs, copy) the first time, and removes leftovers of
// interrupted unpacks (see Repair).
func Open(dir string, opts ...Option) (*Store, error) {
	var cfg config
	for _, o := range opts {
		o(&cfg)
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	for _, d := range []string{dir, filepath.Join(dir, "snapshots"), filepath.Join(dir, "active"), filepath.Join(dir, "tmp")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("open snapshot store: %w", err)
		}
	}
	s := &Store{dir: dir, cfg: cfg}
	name, err := s.pickDriver(cfg.driver)
	if err != nil {
		return nil, fmt.Errorf("open snapshot store %s: %w", dir, err)
	}
	s.drv = newDriver(name)
	if _, err := s.Repair(); err != nil {
		return nil, fmt.Errorf("open snapshot store %s: %w", dir, err)
	}
	return s, nil
}

// pickDriver returns the driver recorded in the store, or records the one
// asked for, or the best one that works on this filesystem.
func (s *Store) pickDriver(want string) (string, error) {
	p := filepath.Join(s.dir, "driver")
	b, err := os.ReadFile(p)
	if err == nil {
		have := strings.TrimSpace(string(b))
		if newDriver(have) == nil {
			return "", fmt.Errorf("unknown driver %q recorded in %s", have, p)
		}
		if want != "" && want != have {
			return "", fmt.Errorf("store uses driver %s, not %s: %w", have, want, ErrNotSupported)
		}
		return have, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	name := want
	switch want {
	case "":
		name = s.detectDriver()
	case DriverOverlay:
		if err := s.probeOverlay(); err != nil {
			return "", fmt.Errorf("overlay driver: %w", err)
		}
	case DriverBtrfs:
		if !isBtrfs(s.dir) {
			return "", fmt.Errorf("btrfs driver: %s is not on btrfs: %w", s.dir, ErrNotSupported)
		}
	case DriverCopy:
	default:
		return "", fmt.Errorf("unknown driver %q: %w", want, ErrInvalid)
	}
	// Record it unless a concurrent Open recorded one first: link(2)
	// fails on an existing name where rename(2) would replace it.
	tmp := p + ".new-" + strconv.Itoa(os.Getpid())
	if err := writeFileAtomic(tmp, []byte(name+"\n")); err != nil {
		return "", err
	}
	defer os.Remove(tmp)
	if err := os.Link(tmp, p); err != nil {
		if errors.Is(err, os.ErrExist) {
			return s.pickDriver(want)
		}
		return "", err
	}
	syncDir(s.dir)
	return name, nil
}

// probeOverlay runs probeOverlay in a tmp entry that Repair leaves alone.
func (s *Store) probeOverlay() error {
	if strings.ContainsAny(s.dir, ":,\\") {
		return fmt.Errorf("store path %q has ':', ',' or '\\', which overlay mount options cannot carry: %w", s.dir, ErrNotSupported)
	}
	t, err := s.newTmp("probe")
	if err != nil {
		return err
	}
	defer t.release(s)
	return probeOverlay(t.path)
}

func (s *Store) detectDriver() string {
	if s.probeOverlay() == nil {
		return DriverOverlay
	}
	if isBtrfs(s.dir) {
		return DriverBtrfs
	}
	return DriverCopy
}

// Driver returns the store's driver name.
func (s *Store) Driver() string { return s.drv.name() }

// Dir returns the store's directory.
func (s *Store) Dir() string { return s.dir }

func (s *Store) snapDir(hex string) string { return filepath.Join(s.dir, "snapshots", hex) }

// Has reports whether the committed snapshot chainID exists.
func (s *Store) Has(chainID string) bool {
	_, err := s.Stat(chainID)
	return err == nil
}

// Stat returns the committed snapshot chainID.
func (s *Store) Stat(chainID string) (Info, error) {
	hex, err := chainHex(chainID)
	if err != nil {
		return Info{}, err
	}
	var info Info
	if err := readJSON(filepath.Join(s.snapDir(hex), "info.json"), &info); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return Info{}, fmt.Errorf("snapshot %s: %w", chainID, ErrNotFound)
		}
		return Info{}, fmt.Errorf("snapshot %s: %w", chainID, err)
	}
	return info, nil
}

// chain returns the fs directories of chainID and its ancestors, topmost
// first ("" gives none).
func (s *Store) chain(chainID string) ([]string, error) {
	var dirs []string
	for id := chainID; id != ""; {
		if len(dirs) > 4096 {
			return nil, fmt.Errorf("snapshot %s: parent chain too long or looping", chainID)
		}
		info, err := s.Stat(id)
		if err != nil {
			return nil, err
		}
		hex, _ := chainHex(id)
		dirs = append(dirs, filepath.Join(s.snapDir(hex), "fs"))
		id = info.Parent
	}
	return dirs, nil
}

// Unpack applies the uncompressed layer tar on top of parent ("" for a
// base layer) and commits it atomically as chainID. It is idempotent: when
// chainID exists it returns its size at once without reading layer. It
// returns the bytes of file content unpacked. On error nothing is
// committed and the partial unpack is removed.
func (s *Store) Unpack(ctx context.Context, chainID, parent string, layer io.Reader) (int64, error) {
	hex, err := chainHex(chainID)
	if err != nil {
		return 0, err
	}
	if parent == chainID {
		return 0, fmt.Errorf("snapshot %s is its own parent: %w", chainID, ErrInvalid)
	}
	if info, err := s.Stat(chainID); err == nil {
		return info.Size, nil
	}
	var chain []string
	if parent != "" {
		if chain, err = s.chain(parent); err != nil {
			return 0, fmt.Errorf("unpack %s: parent: %w", chainID, err)
		}
	}
	t, err := s.newTmp("unpack-" + hex[:12])
	if err != nil {
		return 0, fmt.Errorf("unpack %s: %w", chainID, err)
	}
	defer t.release(s)
	fs := filepath.Join(t.path, "fs")
	lowerTop := ""
	if len(chain) > 0 {
		lowerTop = chain[0]
	}
	if err := s.drv.newLayer(ctx, fs, lowerTop); err != nil {
		return 0, fmt.Errorf("unpack %s: %w", chainID, err)
	}
	opts := archive.Options{Layer: chainID, Whiteouts: s.drv.whiteouts(), MaxEntrySize: s.cfg.maxEntrySize}
	if opts.Whiteouts == archive.WhiteoutOverlay {
		opts.Lowers = chain
	}
	size, err := archive.Apply(ctx, fs, layer, opts)
	if err != nil {
		return 0, err
	}
	if err := s.drv.seal(fs); err != nil {
		return 0, fmt.Errorf("unpack %s: %w", chainID, err)
	}
	info := Info{ChainID: chainID, Parent: parent, Size: size, Created: time.Now().UTC()}
	if err := writeJSON(filepath.Join(t.path, "info.json"), info); err != nil {
		return 0, fmt.Errorf("unpack %s: %w", chainID, err)
	}
	if !s.cfg.noSync {
		if err := unix.Syncfs(t.fd); err != nil {
			return 0, fmt.Errorf("unpack %s: syncfs: %w", chainID, err)
		}
	}
	unlock, err := s.lock()
	if err != nil {
		return 0, err
	}
	defer unlock()
	if parent != "" && !s.Has(parent) {
		return 0, fmt.Errorf("unpack %s: parent %s removed meanwhile: %w", chainID, parent, ErrNotFound)
	}
	if err := os.Rename(t.path, s.snapDir(hex)); err != nil {
		if other, serr := s.Stat(chainID); serr == nil {
			return other.Size, nil // another process committed it first
		}
		return 0, fmt.Errorf("unpack %s: commit: %w", chainID, err)
	}
	t.committed = true
	syncDir(filepath.Join(s.dir, "snapshots"))
	return size, nil
}

// Remove deletes a committed snapshot. It fails with ErrInUse while a
// child snapshot or an active layer sits on it.
func (s *Store) Remove(chainID string) error {
	t, err := s.detachSnapshot(chainID)
	if err != nil {
		return err
	}
	t.release(s) // deleting a large tree need not block commits
	return nil
}

// detachSnapshot moves the unused snapshot chainID into tmp/ under the
// store lock.
func (s *Store) detachSnapshot(chainID string) (*tmpEntry, error) {
	hex, err := chainHex(chainID)
	if err != nil {
		return nil, err
	}
	unlock, err := s.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	if !s.Has(chainID) {
		return nil, fmt.Errorf("remove snapshot %s: %w", chainID, ErrNotFound)
	}
	infos, err := s.List()
	if err != nil {
		return nil, err
	}
	for _, i := range infos {
		if i.Parent == chainID {
			return nil, fmt.Errorf("remove snapshot %s: parent of %s: %w", chainID, i.ChainID, ErrInUse)
		}
	}
	actives, err := s.ListActive()
	if err != nil {
		return nil, err
	}
	for _, a := range actives {
		if a.Parent == chainID {
			return nil, fmt.Errorf("remove snapshot %s: used by active layer %s: %w", chainID, a.Key, ErrInUse)
		}
	}
	return s.moveAway(s.snapDir(hex), "rm-"+hex[:12])
}

// moveAway renames p into a new tmp/ entry, so that it vanishes
// atomically; the entry's release deletes it, or Repair after a crash.
func (s *Store) moveAway(p, prefix string) (*tmpEntry, error) {
	t, err := s.newTmp(prefix)
	if err != nil {
		return nil, err
	}
	if err := os.Rename(p, filepath.Join(t.path, "x")); err != nil {
		t.release(s)
		return nil, fmt.Errorf("remove %s: %w", p, err)
	}
	syncDir(filepath.Dir(p))
	return t, nil
}

// List lists the committed snapshots, sorted by creation time.
func (s *Store) List() ([]Info, error) {
	ents, err := os.ReadDir(filepath.Join(s.dir, "snapshots"))
	if err != nil {
		return nil, fmt.Errorf("list snapshots: %w", err)
	}
	var out []Info
	for _, e := range ents {
		var info Info
		if err := readJSON(filepath.Join(s.dir, "snapshots", e.Name(), "info.json"), &info); err != nil {
			continue // vanished meanwhile (Remove renames it away)
		}
		out = append(out, info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Created.Before(out[j].Created) })
	return out, nil
}

// Repair removes leftovers of interrupted unpacks, prepares and removals
// (never used, as they were never renamed into place) that no live process
// holds, and lists the active layers so the engine can remove those no
// container owns.
func (s *Store) Repair() (RepairReport, error) {
	var rep RepairReport
	tmpDir := filepath.Join(s.dir, "tmp")
	ents, err := os.ReadDir(tmpDir)
	if err != nil {
		return rep, fmt.Errorf("repair: %w", err)
	}
	for _, e := range ents {
		p := filepath.Join(tmpDir, e.Name())
		fd, err := unix.Open(p, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			if err == unix.ENOENT {
				continue
			}
			fd = -1 // a stray file: remove it
		}
		if fd >= 0 {
			if err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB); err != nil {
				unix.Close(fd) // a live process works there
				continue
			}
		}
		err = unmountUnder(p)
		if err == nil {
			err = s.removeTree(p)
		}
		if fd >= 0 {
			unix.Close(fd)
		}
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return rep, fmt.Errorf("repair: remove %s: %w", p, err)
		}
		rep.RemovedTmp = append(rep.RemovedTmp, e.Name())
	}
	aents, err := os.ReadDir(filepath.Join(s.dir, "active"))
	if err != nil {
		return rep, fmt.Errorf("repair: %w", err)
	}
	for _, e := range aents {
		a, err := s.Active(e.Name())
		if err != nil || (a.Parent != "" && !s.Has(a.Parent)) {
			rep.Orphans = append(rep.Orphans, e.Name())
			continue
		}
		rep.Active = append(rep.Active, a)
	}
	if rep.DetachedLoops, err = s.detachOrphanLoops(); err != nil {
		return rep, fmt.Errorf("repair: %w", err)
	}
	return rep, nil
}

// removeTree deletes p and everything below it, btrfs subvolumes too.
func (s *Store) removeTree(p string) error {
	pfd, err := unix.Open(filepath.Dir(p), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(pfd)
	return removeAt(pfd, filepath.Base(p))
}

// Close releases the store. It does not unmount anything.
func (s *Store) Close() error { return nil }

// tmpEntry is a directory in tmp/ flocked by this process.
type tmpEntry struct {
	path      string
	fd        int
	committed bool
}

func (s *Store) newTmp(prefix string) (*tmpEntry, error) {
	var err error
	for range 5 {
		var t *tmpEntry
		if t, err = s.tryNewTmp(prefix); err == nil {
			return t, nil
		}
	}
	return nil, err
}

func (s *Store) tryNewTmp(prefix string) (*tmpEntry, error) {
	p, err := os.MkdirTemp(filepath.Join(s.dir, "tmp"), prefix+"-")
	if err != nil {
		return nil, err
	}
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		os.Remove(p)
		return nil, err
	}
	// A Repair in another process may have removed p between MkdirTemp
	// and here; flock then holds an unlinked directory, caught below.
	if err := unix.Flock(fd, unix.LOCK_EX); err != nil {
		unix.Close(fd)
		return nil, err
	}
	if _, err := os.Stat(p); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return &tmpEntry{path: p, fd: fd}, nil
}

// release removes the entry unless it was committed, and unlocks it.
func (t *tmpEntry) release(s *Store) {
	if !t.committed {
		s.removeTree(t.path)
	}
	unix.Close(t.fd)
}

// lock takes the store's exclusive lock.
func (s *Store) lock() (func(), error) {
	release, err := flock.Lock(filepath.Join(s.dir, "lock"), flock.Exclusive)
	if err != nil {
		return nil, fmt.Errorf("lock snapshot store: %w", err)
	}
	return release, nil
}

func readJSON(p string, v any) error {
	b, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	return nil
}

// writeJSON writes v to p (inside a directory not yet visible) durably.
func writeJSON(p string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(p, append(b, '\n'))
}

// writeFileAtomic writes p through a temporary file, fsync and rename.
func writeFileAtomic(p string, b []byte) error {
	f, err := os.CreateTemp(filepath.Dir(p), "."+filepath.Base(p)+"-")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Chmod(f.Name(), 0o600); err != nil {
		return err
	}
	return os.Rename(f.Name(), p)
}

func syncDir(p string) {
	if fd, err := unix.Open(p, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0); err == nil {
		unix.Fsync(fd)
		unix.Close(fd)
	}
}
