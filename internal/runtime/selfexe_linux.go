package runtime

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// The runtime re-executes itself to become a container's init or an exec'd
// process. If it did so from its file on the host, a container could make
// its process execute that very file (/proc/self/exe as interpreter or
// command) and then write it through /proc/PID/exe: every later run of the
// runtime would be the attacker's code (CVE-2019-5736).
//
// So the re-exec comes from a handle nothing can write through. The first
// choice costs no copy: a private, detached overlayfs whose lower layers are
// an empty tmpfs and the binary's own directory, with no upper layer. Such an
// overlay is read-only by construction (no remount can make it writable, as
// it could a read-only bind mount), it appears in no mount table, and it
// disappears when the last process running from it exits. Where overlayfs
// cannot be mounted (no CAP_SYS_ADMIN, a binary already deleted or
// replaced) the binary is copied into a memfd sealed against every change.

// Seal methods, in order of preference.
const (
	sealOverlay = "overlay"
	sealMemfd   = "memfd"
)

// sealedSelf returns a read-only, close-on-exec handle of the running
// binary that no process can write through, and the method used.
// _COVE_SEAL=memfd skips the overlay (the security tests use it to attack
// both methods).
func sealedSelf() (*os.File, string, error) {
	var f *os.File
	err := errors.New("overlay not wanted")
	if os.Getenv("_COVE_SEAL") != sealMemfd {
		f, err = overlaySelf()
	}
	if err == nil {
		return f, sealOverlay, nil
	}
	f, merr := memfdSelf()
	if merr != nil {
		return nil, "", fmt.Errorf("seal runtime binary: overlay: %v; memfd: %w", err, merr)
	}
	return f, sealMemfd, nil
}

// overlaySelf opens the running binary through a detached lower-only
// overlayfs of its directory and checks it is the same file.
func overlaySelf() (*os.File, error) {
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return nil, err
	}
	if strings.HasSuffix(exe, " (deleted)") || !filepath.IsAbs(exe) {
		return nil, fmt.Errorf("binary %q is not reachable by path", exe)
	}
	var want unix.Stat_t
	if err := unix.Stat("/proc/self/exe", &want); err != nil {
		return nil, err
	}
	dir, err := unix.Open(filepath.Dir(exe), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", filepath.Dir(exe), err)
	}
	defer unix.Close(dir)
	empty, err := emptyTmpfs()
	if err != nil {
		return nil, err
	}
	defer unix.Close(empty)
	fs, err := unix.Fsopen("overlay", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("fsopen overlay: %w", err)
	}
	defer unix.Close(fs)
	// Without an upper layer overlayfs wants two lower ones, and refuses
	// the same directory twice: an empty tmpfs goes on top. The fd paths
	// keep odd characters of the binary's path out of the option string.
	lower := "/proc/self/fd/" + strconv.Itoa(empty) + ":/proc/self/fd/" + strconv.Itoa(dir)
	if err := unix.FsconfigSetString(fs, "lowerdir", lower); err != nil {
		return nil, fmt.Errorf("overlay lowerdir: %w", err)
	}
	if err := unix.FsconfigCreate(fs); err != nil {
		return nil, fmt.Errorf("create overlay: %w", err)
	}
	mnt, err := unix.Fsmount(fs, unix.FSMOUNT_CLOEXEC, unix.MOUNT_ATTR_RDONLY|unix.MOUNT_ATTR_NODEV|unix.MOUNT_ATTR_NOSUID)
	if err != nil {
		return nil, fmt.Errorf("fsmount overlay: %w", err)
	}
	defer unix.Close(mnt)
	fd, err := unix.Openat(mnt, filepath.Base(exe), unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open binary in overlay: %w", err)
	}
	f := os.NewFile(uintptr(fd), "cove-runc (sealed)")
	var got unix.Stat_t
	if err := unix.Fstat(fd, &got); err != nil {
		f.Close()
		return nil, err
	}
	// A single-filesystem overlay reports the lower file's inode number.
	if got.Ino != want.Ino || got.Size != want.Size {
		f.Close()
		return nil, errors.New("binary was replaced since it started")
	}
	return f, nil
}

// emptyTmpfs returns the root of a new, detached, read-only tmpfs.
func emptyTmpfs() (int, error) {
	fs, err := unix.Fsopen("tmpfs", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return -1, fmt.Errorf("fsopen tmpfs: %w", err)
	}
	defer unix.Close(fs)
	if err := unix.FsconfigCreate(fs); err != nil {
		return -1, fmt.Errorf("create tmpfs: %w", err)
	}
	mnt, err := unix.Fsmount(fs, unix.FSMOUNT_CLOEXEC, unix.MOUNT_ATTR_RDONLY)
	if err != nil {
		return -1, fmt.Errorf("fsmount tmpfs: %w", err)
	}
	return mnt, nil
}

// memfdSelf copies the running binary into a memfd and seals it against
// writes, resizing and further seal changes.
func memfdSelf() (*os.File, error) {
	src, err := os.Open("/proc/self/exe")
	if err != nil {
		return nil, err
	}
	defer src.Close()
	flags := unix.MFD_CLOEXEC | unix.MFD_ALLOW_SEALING
	fd, err := unix.MemfdCreate("cove-runc", flags|unix.MFD_EXEC)
	if err == unix.EINVAL { // kernels before 6.3 lack MFD_EXEC
		fd, err = unix.MemfdCreate("cove-runc", flags)
	}
	if err != nil {
		return nil, fmt.Errorf("memfd_create: %w", err)
	}
	f := os.NewFile(uintptr(fd), "cove-runc (sealed memfd)")
	if _, err := io.Copy(f, src); err != nil {
		f.Close()
		return nil, fmt.Errorf("copy binary to memfd: %w", err)
	}
	seals := unix.F_SEAL_SEAL | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, seals); err != nil {
		f.Close()
		return nil, fmt.Errorf("seal memfd: %w", err)
	}
	return f, nil
}

// execPath returns a /proc/self/fd path of f that stays valid in a child
// forked with n extra files: f is duplicated (close-on-exec) above the fd
// numbers the fork's dup2 of those files may use.
func execPath(f *os.File, n int) (string, *os.File, error) {
	fd, err := unix.FcntlInt(f.Fd(), unix.F_DUPFD_CLOEXEC, 2*n+16)
	if err != nil {
		return "", nil, fmt.Errorf("dup sealed binary: %w", err)
	}
	return "/proc/self/fd/" + strconv.Itoa(fd), os.NewFile(uintptr(fd), f.Name()), nil
}
