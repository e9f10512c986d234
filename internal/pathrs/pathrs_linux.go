package pathrs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// maxSymlinks is the number of symlinks one resolution may follow before it
// fails with ELOOP, as in the kernel (MAXSYMLINKS).
const maxSymlinks = 40

// forceWalk makes every lookup use the component walk instead of openat2;
// tests set it to exercise the fallback.
var forceWalk bool

// noOpenat2 records that the kernel answered ENOSYS to openat2.
var noOpenat2 atomic.Bool

// useOpenat2 reports whether lookups should try openat2 first.
func useOpenat2() bool {
	return !forceWalk && !noOpenat2.Load()
}

// OpenInRoot opens path as if root were "/" and returns the file. flags are
// open(2) flags; O_CLOEXEC is always added. Symlinks, absolute or relative,
// are resolved inside root, ".." stops at root, and procfs magic links are
// refused by openat2 (the fallback walk resolves their text inside root).
func OpenInRoot(root, path string, flags int) (*os.File, error) {
	rootFd, err := openRoot(root)
	if err != nil {
		return nil, err
	}
	defer unix.Close(rootFd)
	fd, err := openAt(rootFd, path, flags, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open in root " + root, Path: path, Err: err}
	}
	return os.NewFile(uintptr(fd), filepath.Join(root, path)), nil
}

// MkdirAllInRoot creates every missing directory of path inside root with
// mode (before umask) and returns an O_PATH handle of the final directory.
// Each directory is made with mkdirat(2) on its parent's descriptor. An
// existing component that is not a directory fails with an error wrapping
// ENOTDIR.
func MkdirAllInRoot(root, path string, mode os.FileMode) (*os.File, error) {
	return makeInRoot(root, path, opMkdir, mode)
}

// CreateInRoot creates the missing parents of path (mode 0755) and, when
// path does not exist, an empty regular file with mode inside root, and
// returns an O_PATH handle of it. An existing non-directory at path is
// returned as it is (a bind mount may cover any non-directory); an existing
// directory fails with an error wrapping EISDIR.
func CreateInRoot(root, path string, mode os.FileMode) (*os.File, error) {
	return makeInRoot(root, path, opCreate, mode)
}

// ProcfdPath returns the /proc/self/fd/N path of f, the form mount(2) and
// other path-based calls accept to act on the exact inode f holds.
func ProcfdPath(f *os.File) string {
	return "/proc/self/fd/" + strconv.Itoa(int(f.Fd()))
}

func openRoot(root string) (int, error) {
	fd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, &os.PathError{Op: "open root", Path: root, Err: err}
	}
	return fd, nil
}

// openAt opens path below the directory rootFd, treating it as "/".
func openAt(rootFd int, path string, flags int, mode uint32) (int, error) {
	flags |= unix.O_CLOEXEC
	if useOpenat2() {
		fd, err := openat2InRoot(rootFd, path, flags, mode)
		if !errors.Is(err, unix.ENOSYS) {
			return fd, err
		}
		noOpenat2.Store(true)
	}
	r := newResolver(rootFd)
	defer r.close()
	return r.open(path, flags, mode)
}

func openat2InRoot(rootFd int, path string, flags int, mode uint32) (int, error) {
	if path == "" {
		path = "."
	}
	how := unix.OpenHow{
		Flags:   uint64(flags),
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	}
	if flags&(unix.O_CREAT|unix.O_TMPFILE) != 0 {
		how.Mode = uint64(mode)
	}
	// EAGAIN means a rename or mount raced with the lookup; the kernel asks
	// for a retry.
	for range 32 {
		fd, err := unix.Openat2(rootFd, path, &how)
		if err != unix.EAGAIN {
			return fd, err
		}
	}
	return -1, unix.EAGAIN
}

type makeOp int

const (
	opOpen makeOp = iota
	opMkdir
	opCreate
)

func makeInRoot(root, path string, op makeOp, mode os.FileMode) (*os.File, error) {
	name := "mkdir in root " + root
	if op == opCreate {
		name = "create in root " + root
	}
	rootFd, err := openRoot(root)
	if err != nil {
		return nil, err
	}
	defer unix.Close(rootFd)
	r := newResolver(rootFd)
	defer r.close()
	fd, err := r.make(path, op, uint32(mode.Perm()))
	if err != nil {
		return nil, &os.PathError{Op: name, Path: path, Err: err}
	}
	if useOpenat2() {
		// The walk never follows "..", but a directory it holds could have
		// been renamed out of root meanwhile. Look the resolved path up
		// again with openat2 and insist on the same inode.
		fd, err = recheck(rootFd, r.resolved, fd)
		if err != nil {
			return nil, &os.PathError{Op: name, Path: path, Err: err}
		}
	}
	return os.NewFile(uintptr(fd), filepath.Join(root, path)), nil
}

// recheck returns an openat2 handle of resolved if it is the same inode as
// fd, which it closes in every case.
func recheck(rootFd int, resolved string, fd int) (int, error) {
	defer unix.Close(fd)
	fd2, err := openat2InRoot(rootFd, resolved, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENOSYS) {
		noOpenat2.Store(true)
		return unix.Dup(fd)
	}
	if err != nil {
		return -1, fmt.Errorf("recheck %s: %w", resolved, err)
	}
	var a, b unix.Stat_t
	if err := unix.Fstat(fd, &a); err != nil {
		unix.Close(fd2)
		return -1, err
	}
	if err := unix.Fstat(fd2, &b); err != nil {
		unix.Close(fd2)
		return -1, err
	}
	if a.Dev != b.Dev || a.Ino != b.Ino {
		unix.Close(fd2)
		return -1, fmt.Errorf("%s changed during lookup: %w", resolved, unix.EAGAIN)
	}
	return fd2, nil
}

// splitPath returns the components of p, dropping empty ones and ".".
func splitPath(p string) []string {
	parts := strings.Split(p, "/")
	out := parts[:0]
	for _, s := range parts {
		if s != "" && s != "." {
			out = append(out, s)
		}
	}
	return out
}
