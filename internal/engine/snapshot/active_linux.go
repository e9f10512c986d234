package snapshot

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"cove/internal/engine/quota"
)

func (s *Store) activeDir(key string) string { return filepath.Join(s.dir, "active", key) }

// Prepare creates the writable layer key (for example a container id) on
// top of the committed snapshot chainID ("" for an empty root). It fails
// with ErrExists if key exists and ErrNotFound if chainID does not.
func (s *Store) Prepare(key, chainID string, opts ...PrepareOption) error {
	if err := checkKey(key); err != nil {
		return err
	}
	var cfg prepareConfig
	for _, o := range opts {
		o(&cfg)
	}
	qd, err := s.prepareQuota(&cfg)
	if err != nil {
		return fmt.Errorf("prepare %s: %w", key, err)
	}
	if _, err := os.Stat(s.activeDir(key)); err == nil {
		return fmt.Errorf("prepare %s: %w", key, ErrExists)
	}
	chain, err := s.chain(chainID)
	if err != nil {
		return fmt.Errorf("prepare %s: %w", key, err)
	}
	t, err := s.newTmp("prepare-" + key)
	if err != nil {
		return fmt.Errorf("prepare %s: %w", key, err)
	}
	defer t.release(s)
	info := ActiveInfo{Key: key, Parent: chainID, ReadOnly: cfg.readOnly, Labels: cfg.labels, Created: time.Now().UTC()}
	if qd != nil {
		info.Quota = &QuotaInfo{Driver: qd.Name(), Size: cfg.sizeLimit}
	}
	p := s.paths(t.path, info)
	if qd != nil {
		undo, err := s.createQuota(qd, p, cfg.sizeLimit)
		if err != nil {
			return fmt.Errorf("prepare %s: %w", key, err)
		}
		defer func() {
			if !t.committed {
				undo() // unmount a loop image so that release can remove it
			}
		}()
	}
	if err := s.drv.newActive(context.Background(), p, chain, cfg.readOnly); err != nil {
		return fmt.Errorf("prepare %s: %w", key, err)
	}
	if qd != nil && s.drv.name() == DriverBtrfs {
		if err := quota.LimitBtrfsSubvolume(p.fs, cfg.sizeLimit); err != nil {
			return fmt.Errorf("prepare %s: %w", key, err)
		}
	}
	if err := writeJSON(filepath.Join(t.path, "info.json"), info); err != nil {
		return fmt.Errorf("prepare %s: %w", key, err)
	}
	unlock, err := s.lock()
	if err != nil {
		return err
	}
	defer unlock()
	if chainID != "" && !s.Has(chainID) {
		return fmt.Errorf("prepare %s: snapshot %s removed meanwhile: %w", key, chainID, ErrNotFound)
	}
	if err := os.Rename(t.path, s.activeDir(key)); err != nil {
		if errors.Is(err, unix.EEXIST) || errors.Is(err, unix.ENOTEMPTY) {
			return fmt.Errorf("prepare %s: %w", key, ErrExists)
		}
		return fmt.Errorf("prepare %s: %w", key, err)
	}
	t.committed = true
	syncDir(filepath.Join(s.dir, "active"))
	return nil
}

// Active returns the active layer key.
func (s *Store) Active(key string) (ActiveInfo, error) {
	if err := checkKey(key); err != nil {
		return ActiveInfo{}, err
	}
	var a ActiveInfo
	if err := readJSON(filepath.Join(s.activeDir(key), "info.json"), &a); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return a, fmt.Errorf("active layer %s: %w", key, ErrNotFound)
		}
		return a, fmt.Errorf("active layer %s: %w", key, err)
	}
	return a, nil
}

// ListActive lists the active layers, sorted by key.
func (s *Store) ListActive() ([]ActiveInfo, error) {
	ents, err := os.ReadDir(filepath.Join(s.dir, "active"))
	if err != nil {
		return nil, fmt.Errorf("list active layers: %w", err)
	}
	var out []ActiveInfo
	for _, e := range ents {
		a, err := s.Active(e.Name())
		if err != nil {
			continue
		}
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// Mounts returns the mounts that assemble the active layer key: for
// overlay one overlay mount (lowerdir = the image's snapshots, topmost
// first; upperdir and workdir the layer's own), for btrfs and copy a bind
// mount of the layer's tree. A read-only view has no upper layer. The
// loop image of a capped layer is mounted again first if it is not (after
// a reboot), so the mounts work when performed.
func (s *Store) Mounts(key string) ([]Mount, error) {
	a, err := s.Active(key)
	if err != nil {
		return nil, err
	}
	chain, err := s.chain(a.Parent)
	if err != nil {
		return nil, fmt.Errorf("mounts of %s: %w", key, err)
	}
	if err := s.activateQuota(a); err != nil {
		return nil, fmt.Errorf("mounts of %s: %w", key, err)
	}
	return s.drv.mounts(s.paths(s.activeDir(key), a), chain, a.ReadOnly), nil
}

// Mount mounts the active layer key on target, an existing directory,
// and records target so that RemoveActive refuses while it is mounted.
func (s *Store) Mount(key, target string) error {
	ms, err := s.Mounts(key)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(filepath.Join(s.activeDir(key), "mounts"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("mount %s: %w", key, err)
	}
	_, err = f.WriteString(target + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("mount %s: %w", key, err)
	}
	for _, m := range ms {
		if err := mountOne(m, s.mountSource(key), target); err != nil {
			return fmt.Errorf("mount %s on %s: %w", key, target, err)
		}
	}
	return nil
}

// mountSource names overlay mounts in /proc/self/mountinfo.
func (s *Store) mountSource(key string) string { return "cove:" + s.activeDir(key) }

// Unmount unmounts what Mount mounted on target.
func (s *Store) Unmount(target string) error {
	if err := unix.Unmount(target, 0); err != nil {
		return fmt.Errorf("unmount %s: %w", target, err)
	}
	return nil
}

// RemoveActive deletes the active layer key. It fails with ErrInUse while
// the layer is mounted (by Mount, or an overlay using its upper layer).
// A capped layer's loop image is unmounted, which detaches its device.
func (s *Store) RemoveActive(key string) error {
	if _, err := s.Active(key); err != nil && errors.Is(err, ErrInvalid) {
		return err
	}
	t, err := s.detachActive(key)
	if err != nil {
		return err
	}
	t.release(s)
	return nil
}

// detachActive moves the unmounted active layer key into tmp/ under the
// store lock.
func (s *Store) detachActive(key string) (*tmpEntry, error) {
	unlock, err := s.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	dir := s.activeDir(key)
	if _, err := os.Lstat(dir); err != nil {
		return nil, fmt.Errorf("remove active layer %s: %w", key, ErrNotFound)
	}
	if m, err := s.mountedAt(key); err != nil {
		return nil, fmt.Errorf("remove active layer %s: %w", key, err)
	} else if m != "" {
		return nil, fmt.Errorf("remove active layer %s: mounted on %s: %w", key, m, ErrInUse)
	}
	if a, err := s.Active(key); err == nil {
		if err := s.deactivateQuota(a); err != nil {
			return nil, fmt.Errorf("remove active layer %s: %w: %w", key, ErrInUse, err)
		}
	}
	return s.moveAway(dir, "rm-"+key)
}

// mountedAt returns a mount point where the active layer key is mounted,
// or "".
func (s *Store) mountedAt(key string) (string, error) {
	dir := s.activeDir(key)
	a, aerr := s.Active(key)
	p := s.paths(dir, a)
	upper := "upperdir=" + p.fs
	src := s.mountSource(key)
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		i := 0
		for i < len(fields) && fields[i] != "-" {
			i++
		}
		if i+3 >= len(fields) || len(fields) < 5 {
			continue
		}
		point, fstype, source, super := unescape(fields[4]), fields[i+1], unescape(fields[i+2]), unescape(fields[i+3])
		if source == src {
			return point, nil
		}
		if fstype == "overlay" {
			for _, o := range strings.Split(super, ",") {
				if o == upper {
					return point, nil
				}
			}
		}
	}
	if err := sc.Err(); err != nil {
		return "", err
	}
	// Bind mounts keep the device's name as source: compare inodes of
	// the targets Mount recorded with the layer's tree.
	b, err := os.ReadFile(filepath.Join(dir, "mounts"))
	if err != nil {
		return "", nil
	}
	var want unix.Stat_t
	fs := p.fs
	if aerr == nil && a.ReadOnly {
		return "", nil // a view holds nothing of its own
	}
	if err := unix.Stat(fs, &want); err != nil {
		return "", nil
	}
	for _, t := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var st unix.Stat_t
		if t != "" && unix.Stat(t, &st) == nil && st.Dev == want.Dev && st.Ino == want.Ino && t != fs {
			return t, nil
		}
	}
	return "", nil
}

// unescape undoes mountinfo's octal escapes (\040 for a space).
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var v byte
			ok := true
			for _, c := range []byte(s[i+1 : i+4]) {
				if c < '0' || c > '7' {
					ok = false
				}
				v = v*8 + c - '0'
			}
			if ok {
				b.WriteByte(v)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// Usage returns the space the active layer key's own files take: the
// upper layer for overlay, the whole tree for btrfs and copy (btrfs
// shares unchanged extents with the image, which this does not see).
//
// A layer with a size limit reports what its quota driver charges (qgroup
// exclusive bytes, statfs of the loop image, the project's usage) without
// walking the tree, and the limit.
func (s *Store) Usage(key string) (Usage, error) {
	a, err := s.Active(key)
	if err != nil {
		return Usage{}, err
	}
	if a.Quota != nil {
		return s.quotaUsage(a)
	}
	var u Usage
	fs := s.paths(s.activeDir(key), a).fs
	fd, err := unix.Open(fs, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENOENT) {
		return u, nil // a read-only view
	}
	if err != nil {
		return u, fmt.Errorf("usage of %s: %w", key, err)
	}
	seen := map[uint64]bool{}
	err = du(fd, seen, &u)
	unix.Close(fd)
	if err != nil {
		return u, fmt.Errorf("usage of %s: %w", key, err)
	}
	return u, nil
}

func du(fd int, seen map[uint64]bool, u *Usage) error {
	dfd, err := unix.Dup(fd)
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(dfd), "")
	names, err := f.Readdirnames(-1)
	f.Close()
	if err != nil {
		return err
	}
	for _, n := range names {
		var st unix.Stat_t
		if err := unix.Fstatat(fd, n, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			continue
		}
		if st.Nlink > 1 && st.Mode&unix.S_IFMT != unix.S_IFDIR {
			if seen[st.Ino] {
				continue
			}
			seen[st.Ino] = true
		}
		u.Inodes++
		u.Size += st.Blocks * 512
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			cfd, err := unix.Openat(fd, n, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			if err != nil {
				continue
			}
			err = du(cfd, seen, u)
			unix.Close(cfd)
			if err != nil {
				return err
			}
		}
	}
	return nil
}
