package pathrs

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// ErrNotProcfs means a file that should be on procfs is not: something was
// mounted over /proc or one of its files (CVE-2025-52881).
var ErrNotProcfs = errors.New("not on procfs")

var procRoot struct {
	mu sync.Mutex
	fd int // 0: not opened yet
}

// OpenProcfs opens path, relative to the procfs root ("sys/kernel/shmmax",
// "self/attr/exec"), on a procfs instance of the caller's pid namespace that
// nothing can have mounted over: preferably a private, detached procfs
// mount (fsopen/fsmount), else a non-recursive clone of the /proc mount,
// else /proc itself. Lookups never cross a mount and never follow magic
// links, and the opened file must be on procfs, or it fails with an error
// wrapping ErrNotProcfs or EXDEV. Writes that configure the kernel go
// through it, so that a fake /proc (a tmpfs or a bind mount in the spec)
// cannot swallow or redirect them.
func OpenProcfs(path string, flags int) (*os.File, error) {
	root, err := procfsRoot()
	if err != nil {
		return nil, err
	}
	flags |= unix.O_CLOEXEC
	var fd int
	if useOpenat2() {
		how := unix.OpenHow{
			Flags:   uint64(flags),
			Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_XDEV | unix.RESOLVE_NO_MAGICLINKS,
		}
		fd, err = unix.Openat2(root, path, &how)
		if errors.Is(err, unix.ENOSYS) {
			noOpenat2.Store(true)
		}
	}
	if !useOpenat2() {
		fd, err = walkProcfs(root, path, flags)
	}
	if err != nil {
		return nil, &os.PathError{Op: "open procfs", Path: path, Err: err}
	}
	f := os.NewFile(uintptr(fd), "/proc/"+path)
	if err := checkProcfs(fd); err != nil {
		f.Close()
		return nil, &os.PathError{Op: "open procfs", Path: path, Err: err}
	}
	return f, nil
}

// WriteProcfs writes data to the procfs file path (see OpenProcfs).
func WriteProcfs(path string, data []byte) error {
	f, err := OpenProcfs(path, unix.O_WRONLY)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// Reopen opens the inode f holds (an O_PATH handle whose type the caller
// checked, say) again with flags, through the procfs of OpenProcfs and
// f's /proc/thread-self/fd entry: no path in the container is looked up
// again, so nothing can be swapped in between. The result must be the
// same inode.
func Reopen(f *os.File, flags int) (*os.File, error) {
	root, err := procfsRoot()
	if err != nil {
		return nil, err
	}
	var want, got unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &want); err != nil {
		return nil, err
	}
	fd, err := unix.Openat(root, "thread-self/fd/"+strconv.Itoa(int(f.Fd())), flags|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "reopen", Path: f.Name(), Err: err}
	}
	if err := unix.Fstat(fd, &got); err != nil || got.Dev != want.Dev || got.Ino != want.Ino {
		unix.Close(fd)
		return nil, &os.PathError{Op: "reopen", Path: f.Name(), Err: unix.EXDEV}
	}
	return os.NewFile(uintptr(fd), f.Name()), nil
}

func checkProcfs(fd int) error {
	var fs unix.Statfs_t
	if err := unix.Fstatfs(fd, &fs); err != nil {
		return err
	}
	if fs.Type != unix.PROC_SUPER_MAGIC {
		return fmt.Errorf("%w (filesystem magic %#x)", ErrNotProcfs, fs.Type)
	}
	return nil
}

// procfsRoot returns the cached procfs root descriptor, opening it on first
// use.
func procfsRoot() (int, error) {
	procRoot.mu.Lock()
	defer procRoot.mu.Unlock()
	if procRoot.fd > 0 {
		return procRoot.fd, nil
	}
	fd, err := openProcfsRoot()
	if err != nil {
		return -1, err
	}
	procRoot.fd = fd
	return fd, nil
}

func openProcfsRoot() (int, error) {
	if fs, err := unix.Fsopen("proc", unix.FSOPEN_CLOEXEC); err == nil {
		defer unix.Close(fs)
		if unix.FsconfigCreate(fs) == nil {
			mnt, err := unix.Fsmount(fs, unix.FSMOUNT_CLOEXEC, unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV|unix.MOUNT_ATTR_NOEXEC)
			if err == nil {
				return mnt, nil
			}
		}
	}
	// Without AT_RECURSIVE the clone has none of the mounts stacked on
	// /proc's files.
	if fd, err := unix.OpenTree(unix.AT_FDCWD, "/proc", unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC); err == nil {
		if isProcRoot(fd) == nil {
			return fd, nil
		}
		unix.Close(fd)
	}
	fd, err := unix.Open("/proc", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("open /proc: %w", err)
	}
	if err := isProcRoot(fd); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("/proc: %w", err)
	}
	return fd, nil
}

func isProcRoot(fd int) error {
	if err := checkProcfs(fd); err != nil {
		return err
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	if st.Ino != procRootIno {
		return fmt.Errorf("%w: not the root of a procfs", ErrNotProcfs)
	}
	return nil
}

// walkProcfs is the lookup without openat2: one component at a time, no
// symlink followed except "self" and "thread-self" at the root (read from
// the same procfs), and every component on the root's mount.
func walkProcfs(root int, path string, flags int) (int, error) {
	mnt, err := mountID(root)
	if err != nil {
		return -1, err
	}
	parts := splitPath(path)
	if len(parts) > 0 && (parts[0] == "self" || parts[0] == "thread-self") {
		target, err := readlinkAt(root, parts[0])
		if err != nil {
			return -1, err
		}
		parts = append(splitPath(target), parts[1:]...)
	}
	dir, err := unix.Dup(root)
	if err != nil {
		return -1, err
	}
	for i, name := range parts {
		if name == ".." {
			unix.Close(dir)
			return -1, unix.EXDEV
		}
		f := unix.O_PATH | unix.O_NOFOLLOW | unix.O_CLOEXEC
		if i == len(parts)-1 {
			f = flags | unix.O_NOFOLLOW
		}
		fd, err := unix.Openat(dir, name, f, 0)
		unix.Close(dir)
		if err != nil {
			return -1, err
		}
		if id, err := mountID(fd); err != nil || id != mnt {
			unix.Close(fd)
			if err == nil {
				err = unix.EXDEV
			}
			return -1, err
		}
		dir = fd
	}
	return dir, nil
}

func mountID(fd int) (uint64, error) {
	var stx unix.Statx_t
	if err := unix.Statx(fd, "", unix.AT_EMPTY_PATH, unix.STATX_MNT_ID, &stx); err != nil {
		return 0, err
	}
	return stx.Mnt_id, nil
}

func readlinkAt(dir int, name string) (string, error) {
	buf := make([]byte, 64)
	n, err := unix.Readlinkat(dir, name, buf)
	if err != nil {
		return "", err
	}
	if strings.HasPrefix(string(buf[:n]), "/") {
		return "", unix.EXDEV
	}
	return string(buf[:n]), nil
}
