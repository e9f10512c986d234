package volume

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"cove/internal/engine/archive"
	"cove/internal/flock"
	"cove/internal/pathrs"
)

// CopyUp copies the directory at path inside rootfs (an image's root
// filesystem; symlinks resolve inside it) into the volume when the volume
// is empty, keeping owners, modes, xattrs, times and hard links, the way
// Docker fills a volume on first use. It reports whether it copied: an
// empty or missing source, or a volume that already holds files, copies
// nothing. A failed copy leaves the volume empty.
func (s *Store) CopyUp(ctx context.Context, name, rootfs, path string) (bool, error) {
	v, err := s.Inspect(name)
	if err != nil {
		return false, err
	}
	unlock, err := flock.Lock(filepath.Join(s.volDir(name), "copy.lock"), flock.Exclusive)
	if err != nil {
		return false, err
	}
	defer unlock()
	if err := activate(v); err != nil {
		return false, fmt.Errorf("copy up into volume %s: %w", name, err)
	}
	if empty, err := isEmpty(v.Mountpoint); err != nil || !empty {
		return false, err
	}
	src, err := pathrs.OpenInRoot(rootfs, path, unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
			return false, nil
		}
		return false, fmt.Errorf("copy up into volume %s: %w", name, err)
	}
	defer src.Close()
	if empty, err := isEmpty(pathrs.ProcfdPath(src)); err != nil || empty {
		return false, err
	}
	if _, err := archive.CopyTree(ctx, pathrs.ProcfdPath(src), v.Mountpoint); err != nil {
		emptyDir(v.Mountpoint)
		return false, fmt.Errorf("copy up %s into volume %s: %w", path, name, err)
	}
	return true, nil
}

func isEmpty(dir string) (bool, error) {
	f, err := os.Open(dir)
	if err != nil {
		return false, err
	}
	defer f.Close()
	names, err := f.Readdirnames(1)
	if errors.Is(err, io.EOF) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	return len(names) == 0, nil
}

// emptyDir removes what is inside dir.
func emptyDir(dir string) {
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		os.RemoveAll(filepath.Join(dir, e.Name()))
	}
}

// OpenBindSource resolves the host path of a bind mount (`-v /src:/dst`)
// once and returns an O_PATH handle of it, which the engine mounts from
// through pathrs.ProcfdPath, so that a symlink swapped in later cannot
// redirect the mount. path must be absolute; with create, missing
// directories are made (mode 0755) as `docker run -v` does.
func OpenBindSource(path string, create bool) (*os.File, error) {
	if !filepath.IsAbs(path) {
		return nil, fmt.Errorf("bind source %q: not an absolute path: %w", path, ErrInvalid)
	}
	clean := filepath.Clean(path)
	var f *os.File
	var err error
	if create {
		f, err = pathrs.MkdirAllInRoot("/", clean, 0o755)
		if errors.Is(err, unix.ENOTDIR) {
			f, err = pathrs.OpenInRoot("/", clean, unix.O_PATH) // an existing file
		}
	} else {
		f, err = pathrs.OpenInRoot("/", clean, unix.O_PATH)
	}
	if err != nil {
		return nil, fmt.Errorf("bind source %s: %w", path, err)
	}
	return f, nil
}

// diskUsage walks dir and adds up the blocks its entries take, counting
// hard links once.
func diskUsage(dir string) (int64, error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, err
	}
	defer unix.Close(fd)
	var n int64
	seen := map[uint64]bool{}
	err = walk(fd, seen, &n)
	return n, err
}

func walk(fd int, seen map[uint64]bool, n *int64) error {
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
	for _, name := range names {
		var st unix.Stat_t
		if unix.Fstatat(fd, name, &st, unix.AT_SYMLINK_NOFOLLOW) != nil {
			continue
		}
		if st.Nlink > 1 && st.Mode&unix.S_IFMT != unix.S_IFDIR {
			if seen[st.Ino] {
				continue
			}
			seen[st.Ino] = true
		}
		*n += st.Blocks * 512
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			cfd, err := unix.Openat(fd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			if err != nil {
				continue
			}
			err = walk(cfd, seen, n)
			unix.Close(cfd)
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// removeAll deletes p; nested btrfs subvolumes go too (rmdir of an empty
// subvolume works for root).
func removeAll(p string) error {
	if err := os.RemoveAll(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// unmountUnder lazily unmounts every mount at or below p, deepest first.
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
			if m := unescape(fs[4]); m == p || strings.HasPrefix(m, p+"/") {
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

// unescape undoes mountinfo's octal escapes (\040 for a space).
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
