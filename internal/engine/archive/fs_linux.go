package archive

import (
	"io"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// procFd returns the /proc/self/fd path of descriptor fd.
func procFd(fd int) string { return "/proc/self/fd/" + strconv.Itoa(fd) }

// procAt returns a path naming base inside directory fd that no symlink
// can redirect: the magic link jumps to exactly that directory.
func procAt(fd int, base string) string {
	if base == "" {
		return procFd(fd)
	}
	return procFd(fd) + "/" + base
}

// isWhiteout reports whether st is an overlayfs whiteout (char device 0/0).
func isWhiteout(st *unix.Stat_t) bool {
	return st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == 0
}

// readDirNames lists directory fd (any descriptor of it, O_PATH too).
func readDirNames(fd int) ([]string, error) {
	dfd, err := unix.Openat(fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(dfd), ".")
	defer f.Close()
	return f.Readdirnames(-1)
}

// removeAllAt removes name in directory dirfd and everything below it
// without following symlinks. It returns ENOENT if name does not exist.
func removeAllAt(dirfd int, name string) error {
	err := unix.Unlinkat(dirfd, name, 0)
	if err == nil || (err != unix.EISDIR && err != unix.EPERM && err != unix.EACCES) {
		return err
	}
	fd, oerr := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if oerr != nil {
		return err
	}
	unix.Fchmod(fd, 0o700) // lets a non-root caller empty read-only directories
	names, rerr := readDirNames(fd)
	for _, n := range names {
		if e := removeAllAt(fd, n); e != nil && e != unix.ENOENT && rerr == nil {
			rerr = e
		}
	}
	unix.Close(fd)
	if rerr != nil {
		return rerr
	}
	return unix.Unlinkat(dirfd, name, unix.AT_REMOVEDIR)
}

// findInLayers looks p (clean, relative, no "..") up in overlay layers,
// topmost first, as overlayfs would merge them: a whiteout or a non-directory
// on the way hides everything below, an opaque directory hides the layers
// below it. No symlink is followed. It returns an O_PATH descriptor of the
// entry, or ENOENT.
func findInLayers(layers []string, p string) (int, error) {
	comps := strings.Split(p, "/")
	for _, l := range layers {
		fd, err := unix.Open(l, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return -1, err
		}
		opaque := false
		for i, c := range comps {
			nfd, err := unix.Openat(fd, c, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			unix.Close(fd)
			if err == unix.ENOENT {
				if opaque {
					return -1, unix.ENOENT
				}
				break // not in this layer: look below
			}
			if err != nil {
				return -1, err
			}
			var st unix.Stat_t
			if err := unix.Fstat(nfd, &st); err != nil {
				unix.Close(nfd)
				return -1, err
			}
			if isWhiteout(&st) {
				unix.Close(nfd)
				return -1, unix.ENOENT
			}
			if i == len(comps)-1 {
				return nfd, nil
			}
			if st.Mode&unix.S_IFMT != unix.S_IFDIR {
				unix.Close(nfd)
				return -1, unix.ENOENT
			}
			var v [1]byte
			if n, err := unix.Getxattr(procFd(nfd), opaqueXattr, v[:]); err == nil && n == 1 && v[0] == 'y' {
				opaque = true
			}
			fd = nfd
		}
	}
	return -1, unix.ENOENT
}

// copyEntry copies the non-directory sfd (an O_PATH descriptor, stat st)
// to name in directory dfd with owner (as root), mode, xattrs and times,
// and returns the bytes of content copied.
func copyEntry(sfd int, st *unix.Stat_t, dfd int, name string, isRoot bool) (int64, error) {
	var n int64
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		var err error
		if n, err = copyFile(sfd, dfd, name, isRoot); err != nil {
			return n, err
		}
	case unix.S_IFLNK:
		target, err := readlinkFd(sfd)
		if err != nil {
			return 0, err
		}
		if err := unix.Symlinkat(target, dfd, name); err != nil {
			return 0, err
		}
	case unix.S_IFDIR:
		return 0, unix.EISDIR
	default:
		if err := unix.Mknodat(dfd, name, st.Mode, int(st.Rdev)); err != nil {
			return 0, err
		}
	}
	if isRoot {
		if err := unix.Fchownat(dfd, name, int(st.Uid), int(st.Gid), unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return n, err
		}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFLNK {
		if err := unix.Fchmodat(dfd, name, st.Mode&0o7777, 0); err != nil {
			return n, err
		}
		if st.Mode&unix.S_IFMT != unix.S_IFREG {
			if err := copyXattrs(procFd(sfd), procAt(dfd, name)); err != nil {
				return n, err
			}
		}
	}
	ts := []unix.Timespec{st.Atim, st.Mtim}
	return n, unix.UtimesNanoAt(dfd, name, ts, unix.AT_SYMLINK_NOFOLLOW)
}

// copyFile copies a regular file's content and xattrs (after chown, which
// clears security.capability).
func copyFile(sfd, dfd int, name string, isRoot bool) (int64, error) {
	src, err := os.OpenFile(procFd(sfd), os.O_RDONLY, 0)
	if err != nil {
		return 0, err
	}
	defer src.Close()
	fd, err := unix.Openat(dfd, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return 0, err
	}
	dst := os.NewFile(uintptr(fd), name)
	defer dst.Close()
	var n int64
	if err := unix.IoctlFileClone(fd, int(src.Fd())); err != nil {
		// No reflinks here: copy_file_range(2) through io.Copy.
		if n, err = io.Copy(dst, src); err != nil {
			return n, err
		}
	} else {
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err == nil {
			n = st.Size
		}
	}
	if isRoot {
		var st unix.Stat_t
		if err := unix.Fstat(int(src.Fd()), &st); err != nil {
			return n, err
		}
		if err := unix.Fchown(fd, int(st.Uid), int(st.Gid)); err != nil {
			return n, err
		}
	}
	return n, copyXattrs(procFd(int(src.Fd())), procFd(fd))
}

// copyXattrs copies the xattrs from src to dst (both followed paths) but
// overlayfs metadata and the SELinux label.
func copyXattrs(src, dst string) error {
	sz, err := unix.Listxattr(src, nil)
	if err != nil || sz == 0 {
		if err == unix.ENOTSUP {
			return nil
		}
		return err
	}
	buf := make([]byte, sz)
	if sz, err = unix.Listxattr(src, buf); err != nil {
		return err
	}
	for _, name := range strings.Split(strings.TrimRight(string(buf[:sz]), "\x00"), "\x00") {
		if name == "" || name == "security.selinux" || strings.HasPrefix(name, "trusted.overlay.") {
			continue
		}
		vsz, err := unix.Getxattr(src, name, nil)
		if err != nil {
			return err
		}
		v := make([]byte, vsz)
		if vsz, err = unix.Getxattr(src, name, v); err != nil {
			return err
		}
		if err := unix.Setxattr(dst, name, v[:vsz], 0); err != nil && err != unix.ENOTSUP {
			return err
		}
	}
	return nil
}

// copyMeta gives the directory dst (a followed path) the owner, mode,
// xattrs and times of sfd (stat st).
func copyMeta(sfd int, st *unix.Stat_t, dst string, isRoot bool) error {
	if isRoot {
		if err := unix.Chown(dst, int(st.Uid), int(st.Gid)); err != nil {
			return err
		}
	}
	if err := unix.Chmod(dst, st.Mode&0o7777); err != nil {
		return err
	}
	if err := copyXattrs(procFd(sfd), dst); err != nil {
		return err
	}
	return unix.UtimesNanoAt(unix.AT_FDCWD, dst, []unix.Timespec{st.Atim, st.Mtim}, 0)
}

func readlinkFd(fd int) (string, error) {
	buf := make([]byte, 256)
	for {
		n, err := unix.Readlinkat(fd, "", buf)
		if err != nil {
			return "", err
		}
		if n < len(buf) {
			return string(buf[:n]), nil
		}
		buf = make([]byte, 2*len(buf))
	}
}
