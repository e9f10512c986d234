package snapshot

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/sys/unix"

	"cove/internal/engine/quota"
)

// quotaDirName is the capped directory of an overlay or copy layer with a
// size limit; the loop driver keeps its image beside it (q.img).
const quotaDirName = "q"

// paths returns where the active layer a, in directory dir, keeps its
// upper and work directories.
func (s *Store) paths(dir string, a ActiveInfo) layerPaths {
	if a.Quota == nil || s.drv.name() == DriverBtrfs {
		return plainPaths(dir)
	}
	q := filepath.Join(dir, quotaDirName)
	return layerPaths{dir: dir, fs: filepath.Join(q, "fs"), work: filepath.Join(q, "work")}
}

// QuotaDriver returns the quota driver a size limit uses in this store
// (quota.Btrfs, quota.Project or quota.Loop), or "" when none works here.
// `cove info` reports it.
func (s *Store) QuotaDriver() string {
	if s.drv.name() == DriverBtrfs {
		if quota.Check(quota.Btrfs, s.dir) == nil {
			return quota.Btrfs
		}
		return ""
	}
	if a := quota.Available(filepath.Join(s.dir, "active")); len(a) > 0 {
		return a[0]
	}
	return ""
}

// QuotaDrivers lists the quota drivers WithQuotaDriver accepts here, best
// first.
func (s *Store) QuotaDrivers() []string {
	if s.drv.name() == DriverBtrfs {
		if d := s.QuotaDriver(); d != "" {
			return []string{d}
		}
		return nil
	}
	return quota.Available(filepath.Join(s.dir, "active"))
}

// prepareQuota checks cfg's size limit and returns the quota driver that
// enforces it, or nil without a limit.
func (s *Store) prepareQuota(cfg *prepareConfig) (quota.Driver, error) {
	if cfg.sizeLimit < 0 {
		return nil, fmt.Errorf("size limit %d: %w", cfg.sizeLimit, ErrInvalid)
	}
	if cfg.sizeLimit == 0 {
		if cfg.quotaDriver != "" {
			return nil, fmt.Errorf("quota driver %s without a size limit: %w", cfg.quotaDriver, ErrInvalid)
		}
		return nil, nil
	}
	if cfg.readOnly {
		return nil, fmt.Errorf("size limit on a read-only view: %w", ErrInvalid)
	}
	name := cfg.quotaDriver
	if name == "" {
		name = s.QuotaDriver()
		if name == "" {
			return nil, fmt.Errorf("size limit: no quota driver works on %s (%s driver): %w", s.dir, s.drv.name(), ErrNotSupported)
		}
	}
	if s.drv.name() == DriverBtrfs && name != quota.Btrfs {
		return nil, fmt.Errorf("size limit: the btrfs driver caps layers with %s only, not %s: %w", quota.Btrfs, name, ErrNotSupported)
	}
	d, err := quota.New(name)
	if err != nil {
		return nil, fmt.Errorf("size limit: %w: %w", ErrNotSupported, err)
	}
	if err := quota.Check(name, filepath.Join(s.dir, "active")); err != nil {
		return nil, fmt.Errorf("size limit: %w: %w", ErrNotSupported, err)
	}
	return d, nil
}

// createQuota creates the capped directory of an overlay or copy layer at
// p (nothing for btrfs, whose subvolume is capped after it exists) and
// returns a function deactivating it again.
func (s *Store) createQuota(d quota.Driver, p layerPaths, size int64) (func(), error) {
	if s.drv.name() == DriverBtrfs {
		return func() {}, nil
	}
	q := filepath.Join(p.dir, quotaDirName)
	if err := d.Create(q, size); err != nil {
		return nil, err
	}
	return func() { d.Deactivate(q) }, nil
}

// quotaDir returns the directory a's quota driver caps.
func (s *Store) quotaDir(a ActiveInfo) string {
	if s.drv.name() == DriverBtrfs {
		return filepath.Join(s.activeDir(a.Key), "fs")
	}
	return filepath.Join(s.activeDir(a.Key), quotaDirName)
}

func quotaDriverOf(a ActiveInfo) (quota.Driver, error) {
	d, err := quota.New(a.Quota.Driver)
	if err != nil {
		return nil, fmt.Errorf("active layer %s: %w", a.Key, err)
	}
	return d, nil
}

// activateQuota mounts a's loop image again after a reboot.
func (s *Store) activateQuota(a ActiveInfo) error {
	if a.Quota == nil {
		return nil
	}
	d, err := quotaDriverOf(a)
	if err != nil {
		return err
	}
	return d.Activate(s.quotaDir(a))
}

// deactivateQuota unmounts a's loop image (which detaches its device).
func (s *Store) deactivateQuota(a ActiveInfo) error {
	if a.Quota == nil {
		return nil
	}
	d, err := quotaDriverOf(a)
	if err != nil {
		return err
	}
	return d.Deactivate(s.quotaDir(a))
}

func (s *Store) quotaUsage(a ActiveInfo) (Usage, error) {
	d, err := quotaDriverOf(a)
	if err != nil {
		return Usage{}, err
	}
	u, err := d.Usage(s.quotaDir(a))
	if err != nil {
		return Usage{}, fmt.Errorf("usage of %s: %w", a.Key, err)
	}
	return Usage{Size: u.Used, Inodes: u.Inodes, Limit: u.Limit}, nil
}

// Resize changes the size limit of the writable layer key to size bytes,
// live (the layer may be mounted and in use). A size below what the layer
// holds fails with ErrBelowUsage. A loop image only grows, and growing one
// that is in use needs CAP_SYS_RESOURCE (online ext4 resize); without it
// the image grows while no container uses it and fails with
// ErrNotSupported otherwise. A btrfs layer prepared without a limit gets
// one; other layers without a limit fail with ErrNotSupported.
func (s *Store) Resize(key string, size int64) error {
	if size <= 0 {
		return fmt.Errorf("resize %s: size %d: %w", key, size, ErrInvalid)
	}
	unlock, err := s.lock()
	if err != nil {
		return err
	}
	defer unlock()
	a, err := s.Active(key)
	if err != nil {
		return err
	}
	if a.ReadOnly {
		return fmt.Errorf("resize %s: a read-only view has no writable layer: %w", key, ErrInvalid)
	}
	if a.Quota == nil {
		if s.drv.name() != DriverBtrfs {
			return fmt.Errorf("resize %s: prepared without a size limit (%s driver): %w", key, s.drv.name(), ErrNotSupported)
		}
		a.Quota = &QuotaInfo{Driver: quota.Btrfs}
	}
	d, err := quotaDriverOf(a)
	if err != nil {
		return err
	}
	if err := d.Resize(s.quotaDir(a), size); err != nil {
		if errors.Is(err, quota.ErrNotSupported) {
			return fmt.Errorf("resize %s: %w: %w", key, ErrNotSupported, err)
		}
		return fmt.Errorf("resize %s: %w", key, err)
	}
	a.Quota.Size = size
	if err := writeJSON(filepath.Join(s.activeDir(key), "info.json"), a); err != nil {
		return fmt.Errorf("resize %s: %w", key, err)
	}
	return nil
}

// unmountUnder lazily unmounts every mount below p (a tmp/ entry being
// removed: a loop image left mounted by a crash), deepest first.
func unmountUnder(p string) error {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	defer f.Close()
	var points []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) > 4 {
			if m := unescape(fs[4]); strings.HasPrefix(m, p+"/") {
				points = append(points, m)
			}
		}
	}
	sort.Sort(sort.Reverse(sort.StringSlice(points)))
	for _, m := range points {
		if err := unix.Unmount(m, unix.MNT_DETACH); err != nil && err != unix.EINVAL && err != unix.ENOENT {
			return fmt.Errorf("unmount %s: %w", m, err)
		}
	}
	return nil
}

// detachOrphanLoops detaches loop devices backed by images in the store
// that no active layer or live prepare owns.
func (s *Store) detachOrphanLoops() ([]string, error) {
	unlock, err := s.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	tmp := filepath.Join(s.dir, "tmp") + "/"
	active := filepath.Join(s.dir, "active") + "/"
	return quota.DetachOrphanLoops(s.dir, func(img string) bool {
		if strings.HasPrefix(img, tmp) {
			return true // a live process's prepare (Repair removed the dead ones)
		}
		key, rest, ok := strings.Cut(strings.TrimPrefix(img, active), "/")
		if !strings.HasPrefix(img, active) || !ok || rest != quotaDirName+".img" {
			return false
		}
		a, err := s.Active(key)
		return err == nil && a.Quota != nil && a.Quota.Driver == quota.Loop
	})
}
