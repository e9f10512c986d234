package rootfs

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"cove/internal/pathrs"
)

// Finalize runs after Pivot. It masks MaskedPaths (/dev/null bound over
// files, an empty read-only tmpfs over directories; missing paths are
// skipped), makes ReadonlyPaths read-only recursively (other flags such as
// nosuid stay as they are), remounts "/" read-only when Readonly is set, and
// applies Propagation to "/".
//
// Preconditions: Pivot succeeded.
func Finalize(c *Config) error {
	var null *os.File
	defer func() {
		if null != nil {
			null.Close()
		}
	}()
	for _, p := range c.MaskedPaths {
		if err := maskPath(p, &null); err != nil {
			return fmt.Errorf("mask %s: %w", p, err)
		}
	}
	for _, p := range c.ReadonlyPaths {
		if err := readonlyPath(p); err != nil {
			return fmt.Errorf("readonly %s: %w", p, err)
		}
	}
	if c.Readonly {
		attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY}
		if err := unix.MountSetattr(unix.AT_FDCWD, "/", 0, &attr); err != nil {
			return fmt.Errorf("remount / read-only: %w", err)
		}
	}
	if c.Propagation != "" {
		flags, err := propagationFlags(c.Propagation)
		if err != nil {
			return err
		}
		if err := unix.Mount("", "/", "", flags, ""); err != nil {
			return fmt.Errorf("set propagation of / to %s: %w", c.Propagation, err)
		}
	}
	return nil
}

func maskPath(p string, null **os.File) error {
	f, err := pathrs.OpenInRoot("/", p, unix.O_PATH)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		return maskDir(int(f.Fd()))
	}
	if *null == nil {
		if *null, err = openDevNull(); err != nil {
			return err
		}
	}
	return attachClone(int((*null).Fd()), "", int(f.Fd()), &mountOpts{})
}

// maskDir attaches a new empty read-only tmpfs onto the directory dirFd
// holds. No path is resolved after the root switch: a /proc/self/fd path
// would go through the container's /proc, which the spec may have replaced.
func maskDir(dirFd int) error {
	fs, err := unix.Fsopen("tmpfs", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return fmt.Errorf("fsopen tmpfs: %w", err)
	}
	defer unix.Close(fs)
	if err := unix.FsconfigCreate(fs); err != nil {
		return fmt.Errorf("create tmpfs: %w", err)
	}
	mnt, err := unix.Fsmount(fs, unix.FSMOUNT_CLOEXEC, unix.MOUNT_ATTR_RDONLY)
	if err != nil {
		return fmt.Errorf("fsmount tmpfs: %w", err)
	}
	defer unix.Close(mnt)
	if err := unix.MoveMount(mnt, "", dirFd, "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH); err != nil {
		return fmt.Errorf("move_mount tmpfs: %w", err)
	}
	return nil
}

// openDevNull opens the container's /dev/null and checks that it really is
// the null device, so that a symlink or another node planted there cannot
// be bound over a masked path (CVE-2025-31133).
func openDevNull() (*os.File, error) {
	f, err := pathrs.OpenInRoot("/", "/dev/null", unix.O_PATH|unix.O_NOFOLLOW)
	if err != nil {
		return nil, err
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		f.Close()
		return nil, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != unix.Mkdev(1, 3) {
		f.Close()
		return nil, fmt.Errorf("/dev/null is not the null device (mode %#o, device %d:%d)",
			st.Mode, unix.Major(st.Rdev), unix.Minor(st.Rdev))
	}
	return f, nil
}

func readonlyPath(p string) error {
	f, err := pathrs.OpenInRoot("/", p, unix.O_PATH)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	o := &mountOpts{recursive: true, rec: unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY}}
	return attachClone(int(f.Fd()), "", int(f.Fd()), o)
}
