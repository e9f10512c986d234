package volume

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"cove/internal/engine/quota"
	"cove/internal/flock"
)

// Store is the volumes directory. Safe for concurrent use by goroutines
// and processes.
type Store struct {
	dir string
}

// Open opens (creating) the volume store in dir and repairs what a crash
// left behind (see Repair).
func Open(dir string) (*Store, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("open volume store: %w", err)
	}
	s := &Store{dir: dir}
	if _, err := s.Repair(); err != nil {
		return nil, fmt.Errorf("open volume store %s: %w", dir, err)
	}
	return s, nil
}

// Dir returns the store's directory.
func (s *Store) Dir() string { return s.dir }

func (s *Store) volDir(name string) string { return filepath.Join(s.dir, name) }

func dataDir(vdir string) string { return filepath.Join(vdir, "_data") }

// lock takes the store's exclusive lock.
func (s *Store) lock() (func(), error) {
	return flock.Lock(filepath.Join(s.dir, ".lock"), flock.Exclusive) // names never start with "."
}

// parseOptions checks the driver options and returns the quota driver and
// size they ask for (nil without size).
func (s *Store) parseOptions(opts map[string]string) (quota.Driver, int64, error) {
	for k := range opts {
		if k != "size" && k != "quota" {
			return nil, 0, fmt.Errorf("volume option %q (the local driver takes size and quota): %w", k, ErrNotSupported)
		}
	}
	sz, ok := opts["size"]
	if !ok {
		if _, ok := opts["quota"]; ok {
			return nil, 0, fmt.Errorf("volume option quota without size: %w", ErrInvalid)
		}
		return nil, 0, nil
	}
	size, err := quota.ParseSize(sz)
	if err != nil {
		return nil, 0, fmt.Errorf("volume option size: %w: %w", ErrInvalid, err)
	}
	name := opts["quota"]
	if name == "" {
		a := quota.Available(s.dir)
		if len(a) == 0 {
			return nil, 0, fmt.Errorf("volume option size: no quota driver works on %s: %w", s.dir, ErrNotSupported)
		}
		name = a[0]
	} else if err := quota.Check(name, s.dir); err != nil {
		return nil, 0, fmt.Errorf("volume option quota: %w: %w", ErrNotSupported, err)
	}
	d, err := quota.New(name)
	if err != nil {
		return nil, 0, fmt.Errorf("volume option quota: %w: %w", ErrInvalid, err)
	}
	return d, size, nil
}

// Create creates the volume name ("" for an anonymous volume with a random
// name). Creating an existing volume returns it when the options agree (or
// none are given) and fails with ErrExists otherwise.
func (s *Store) Create(name string, o CreateOptions) (*Volume, error) {
	if o.Driver != "" && o.Driver != DriverLocal {
		return nil, fmt.Errorf("volume driver %q: %w", o.Driver, ErrNotSupported)
	}
	anon := name == ""
	if anon {
		name = randomName()
	}
	if err := checkName(name); err != nil {
		return nil, err
	}
	qd, size, err := s.parseOptions(o.Options)
	if err != nil {
		return nil, err
	}
	unlock, err := s.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	if v, err := s.Inspect(name); err == nil {
		if len(o.Options) == 0 || maps.Equal(o.Options, v.Options) {
			return v, nil
		}
		return nil, fmt.Errorf("volume %s: %w", name, ErrExists)
	}
	tmp, err := os.MkdirTemp(s.dir, ".tmp-create-")
	if err != nil {
		return nil, fmt.Errorf("create volume %s: %w", name, err)
	}
	ok := false
	defer func() {
		if !ok {
			s.removeVolumeDir(tmp)
		}
	}()
	v := &Volume{
		Name: name, Driver: DriverLocal, CreatedAt: time.Now().UTC(), Scope: "local",
		Labels: maps.Clone(o.Labels), Options: maps.Clone(o.Options), Anonymous: anon,
	}
	if v.Labels == nil {
		v.Labels = map[string]string{}
	}
	if v.Options == nil {
		v.Options = map[string]string{}
	}
	if anon {
		v.Labels[LabelAnonymous] = ""
	}
	if qd != nil {
		if err := qd.Create(dataDir(tmp), size); err != nil {
			return nil, fmt.Errorf("create volume %s: %w", name, err)
		}
		v.Quota = &Quota{Driver: qd.Name(), Size: size}
	} else if err := os.Mkdir(dataDir(tmp), 0o755); err != nil {
		return nil, fmt.Errorf("create volume %s: %w", name, err)
	}
	if err := writeMeta(tmp, v); err != nil {
		return nil, fmt.Errorf("create volume %s: %w", name, err)
	}
	if err := os.Rename(tmp, s.volDir(name)); err != nil {
		return nil, fmt.Errorf("create volume %s: %w", name, err)
	}
	ok = true
	syncDir(s.dir)
	v.Mountpoint = dataDir(s.volDir(name))
	return v, nil
}

func randomName() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return hex.EncodeToString(b[:])
}

// Inspect returns the volume name.
func (s *Store) Inspect(name string) (*Volume, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(filepath.Join(s.volDir(name), "volume.json"))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("volume %s: %w", name, ErrNotFound)
		}
		return nil, fmt.Errorf("volume %s: %w", name, err)
	}
	var v Volume
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("volume %s: metadata: %w", name, err)
	}
	v.Mountpoint = dataDir(s.volDir(name))
	return &v, nil
}

// List lists the volumes, sorted by name.
func (s *Store) List() ([]*Volume, error) {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("list volumes: %w", err)
	}
	var out []*Volume
	for _, e := range ents {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		if v, err := s.Inspect(e.Name()); err == nil {
			out = append(out, v)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Path returns the volume's data directory for a bind mount, mounting a
// loop-capped volume's image again after a reboot.
func (s *Store) Path(name string) (string, error) {
	v, err := s.Inspect(name)
	if err != nil {
		return "", err
	}
	if err := activate(v); err != nil {
		return "", fmt.Errorf("volume %s: %w", name, err)
	}
	return v.Mountpoint, nil
}

func activate(v *Volume) error {
	if v.Quota == nil {
		return nil
	}
	d, err := quota.New(v.Quota.Driver)
	if err != nil {
		return err
	}
	return d.Activate(v.Mountpoint)
}

// Acquire records that container uses the volume; Remove refuses while
// any container does.
func (s *Store) Acquire(name, container string) error {
	return s.update(name, func(v *Volume) {
		if !slices.Contains(v.UsedBy, container) {
			v.UsedBy = append(v.UsedBy, container)
		}
	})
}

// Release drops container from the volume's users; releasing a volume
// that no longer exists is not an error.
func (s *Store) Release(name, container string) error {
	err := s.update(name, func(v *Volume) {
		v.UsedBy = slices.DeleteFunc(v.UsedBy, func(c string) bool { return c == container })
	})
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	return err
}

func (s *Store) update(name string, fn func(*Volume)) error {
	unlock, err := s.lock()
	if err != nil {
		return err
	}
	defer unlock()
	v, err := s.Inspect(name)
	if err != nil {
		return err
	}
	fn(v)
	if err := writeMeta(s.volDir(name), v); err != nil {
		return fmt.Errorf("volume %s: %w", name, err)
	}
	return nil
}

// Remove deletes the volume and its data. It fails with ErrInUse while a
// container uses it, unless force.
func (s *Store) Remove(name string, force bool) error {
	unlock, err := s.lock()
	if err != nil {
		return err
	}
	defer unlock()
	return s.removeLocked(name, force)
}

func (s *Store) removeLocked(name string, force bool) error {
	v, err := s.Inspect(name)
	if err != nil {
		return err
	}
	if len(v.UsedBy) > 0 && !force {
		return fmt.Errorf("remove volume %s: used by %s: %w", name, strings.Join(v.UsedBy, ", "), ErrInUse)
	}
	tmp, err := os.MkdirTemp(s.dir, ".tmp-rm-")
	if err != nil {
		return fmt.Errorf("remove volume %s: %w", name, err)
	}
	dst := filepath.Join(tmp, "v")
	if err := os.Rename(s.volDir(name), dst); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("remove volume %s: %w", name, err)
	}
	syncDir(s.dir)
	if err := s.removeVolumeDir(dst); err != nil {
		return fmt.Errorf("remove volume %s: %w", name, err)
	}
	return os.RemoveAll(tmp)
}

// removeVolumeDir deletes a volume directory moved out of the way (or a
// half-created one), unmounting a loop image first.
func (s *Store) removeVolumeDir(vdir string) error {
	data := dataDir(vdir)
	var v Volume
	if b, err := os.ReadFile(filepath.Join(vdir, "volume.json")); err == nil && json.Unmarshal(b, &v) == nil && v.Quota != nil {
		d, err := quota.New(v.Quota.Driver)
		if err != nil {
			return err
		}
		if err := d.Remove(data); err != nil {
			return err
		}
	} else if _, err := os.Stat(quota.ImagePath(data)); err == nil {
		d, _ := quota.New(quota.Loop)
		if err := d.Remove(data); err != nil {
			return err
		}
	}
	if err := unmountUnder(vdir); err != nil {
		return err
	}
	return removeAll(vdir)
}

// Prune removes the volumes no container uses: the anonymous ones, or all
// with o.All, restricted to those carrying o.Labels. It returns the names
// removed and the bytes their files took.
func (s *Store) Prune(o PruneOptions) ([]string, int64, error) {
	unlock, err := s.lock()
	if err != nil {
		return nil, 0, err
	}
	defer unlock()
	vols, err := s.List()
	if err != nil {
		return nil, 0, err
	}
	var removed []string
	var reclaimed int64
	for _, v := range vols {
		if len(v.UsedBy) > 0 || (!o.All && !v.Anonymous) || !hasLabels(v.Labels, o.Labels) {
			continue
		}
		u, _ := s.usage(v)
		if err := s.removeLocked(v.Name, false); err != nil {
			return removed, reclaimed, err
		}
		removed = append(removed, v.Name)
		reclaimed += u.Size
	}
	return removed, reclaimed, nil
}

func hasLabels(have, want map[string]string) bool {
	for k, w := range want {
		v, ok := have[k]
		if !ok || (w != "" && v != w) {
			return false
		}
	}
	return true
}

// DiskUsage reports every volume's size (from its quota driver when
// capped, by walking the tree otherwise) and users, for `cove system df`.
func (s *Store) DiskUsage(ctx context.Context) ([]Usage, error) {
	vols, err := s.List()
	if err != nil {
		return nil, err
	}
	out := make([]Usage, 0, len(vols))
	for _, v := range vols {
		if err := ctx.Err(); err != nil {
			return out, err
		}
		u, err := s.usage(v)
		if err != nil {
			return out, err
		}
		out = append(out, u)
	}
	return out, nil
}

func (s *Store) usage(v *Volume) (Usage, error) {
	u := Usage{Name: v.Name, RefCount: len(v.UsedBy)}
	if v.Quota != nil {
		d, err := quota.New(v.Quota.Driver)
		if err != nil {
			return u, err
		}
		qu, err := d.Usage(v.Mountpoint)
		if err != nil {
			return u, fmt.Errorf("volume %s: %w", v.Name, err)
		}
		u.Size, u.Limit = qu.Used, qu.Limit
		return u, nil
	}
	n, err := diskUsage(v.Mountpoint)
	if err != nil {
		return u, fmt.Errorf("volume %s: %w", v.Name, err)
	}
	u.Size = n
	return u, nil
}

// Repair removes half-created and half-removed volumes (.tmp-* entries),
// unmounting their loop images, and detaches loop devices backed by images
// of volumes that no longer exist. It returns what it removed and the
// devices it detached.
func (s *Store) Repair() ([]string, error) {
	unlock, err := s.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("repair volumes: %w", err)
	}
	var done []string
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), ".tmp-") {
			continue
		}
		p := filepath.Join(s.dir, e.Name())
		if err := unmountUnder(p); err != nil {
			return done, fmt.Errorf("repair volumes: %w", err)
		}
		if err := removeAll(p); err != nil {
			return done, fmt.Errorf("repair volumes: %w", err)
		}
		done = append(done, e.Name())
	}
	devs, err := quota.DetachOrphanLoops(s.dir, func(img string) bool {
		name, rest, ok := strings.Cut(strings.TrimPrefix(img, s.dir+"/"), "/")
		if !ok || rest != "_data.img" {
			return false
		}
		_, err := s.Inspect(name)
		return err == nil
	})
	if err != nil {
		return done, fmt.Errorf("repair volumes: %w", err)
	}
	return append(done, devs...), nil
}

func writeMeta(vdir string, v *Volume) error {
	c := *v
	c.Mountpoint = ""
	b, err := json.MarshalIndent(&c, "", "  ")
	if err != nil {
		return err
	}
	p := filepath.Join(vdir, "volume.json")
	f, err := os.CreateTemp(vdir, ".volume.json-")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(append(b, '\n')); err != nil {
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
	return os.Rename(f.Name(), p)
}

func syncDir(p string) {
	if fd, err := unix.Open(p, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0); err == nil {
		unix.Fsync(fd)
		unix.Close(fd)
	}
}
