package rootfs

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"cove/internal/pathrs"
)

// unix98PtySlaveMajor is the first of the eight majors of pty slaves.
const unix98PtySlaveMajor = 136

// Pivot makes Rootfs the root and changes directory to "/". It uses
// pivot_root(".", ".") and then detaches the old root, after making it
// rslave so that the unmount cannot propagate to the host; with NoPivot it
// moves the root mount onto "/" and chroots instead.
//
// Preconditions: Prepare succeeded.
func Pivot(c *Config) error {
	if c.NoPivot {
		return moveRoot(c.Rootfs)
	}
	return pivotRoot(c.Rootfs)
}

func pivotRoot(root string) error {
	oldRoot, err := unix.Open("/", unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open old root: %w", err)
	}
	defer unix.Close(oldRoot)
	newRoot, err := unix.Open(root, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open new root %s: %w", root, err)
	}
	defer unix.Close(newRoot)
	if err := unix.Fchdir(newRoot); err != nil {
		return fmt.Errorf("chdir %s: %w", root, err)
	}
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root %s: %w", root, err)
	}
	// The old root is now stacked under the new one; "." still is it.
	if err := unix.Fchdir(oldRoot); err != nil {
		return fmt.Errorf("chdir old root: %w", err)
	}
	if err := unix.Mount("", ".", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("make old root rslave: %w", err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("unmount old root: %w", err)
	}
	if err := unix.Chdir("/"); err != nil {
		return fmt.Errorf("chdir /: %w", err)
	}
	return nil
}

func moveRoot(root string) error {
	if err := unix.Chdir(root); err != nil {
		return fmt.Errorf("chdir %s: %w", root, err)
	}
	if err := unix.Mount(".", "/", "", unix.MS_MOVE, ""); err != nil {
		return fmt.Errorf("move %s to /: %w", root, err)
	}
	if err := unix.Chroot("."); err != nil {
		return fmt.Errorf("chroot %s: %w", root, err)
	}
	if err := unix.Chdir("/"); err != nil {
		return fmt.Errorf("chdir /: %w", err)
	}
	return nil
}

// MountConsole bind-mounts the pty slave at slave (a path in the new root,
// such as /dev/pts/0) over /dev/console, creating /dev/console if needed.
// slave must be a pty slave on devpts and /dev/console a regular file or a
// character device, never a symlink (CVE-2025-52565).
//
// Preconditions: Pivot succeeded.
func MountConsole(slave string) error {
	src, err := pathrs.OpenInRoot("/", slave, unix.O_PATH|unix.O_NOFOLLOW)
	if err != nil {
		return fmt.Errorf("console %s: %w", slave, err)
	}
	defer src.Close()
	if err := checkPty(int(src.Fd())); err != nil {
		return fmt.Errorf("console %s: %w", slave, err)
	}
	dev, err := pathrs.MkdirAllInRoot("/", "/dev", 0o755)
	if err != nil {
		return fmt.Errorf("console: %w", err)
	}
	defer dev.Close()
	dfd := int(dev.Fd())
	if fd, err := unix.Openat(dfd, "console", unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600); err == nil {
		unix.Close(fd)
	} else if err != unix.EEXIST {
		return fmt.Errorf("create /dev/console: %w", err)
	}
	fd, err := unix.Openat(dfd, "console", unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open /dev/console: %w", err)
	}
	dst := os.NewFile(uintptr(fd), "/dev/console")
	defer dst.Close()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("stat /dev/console: %w", err)
	}
	if t := st.Mode & unix.S_IFMT; t != unix.S_IFREG && t != unix.S_IFCHR {
		return fmt.Errorf("/dev/console is neither a file nor a device (mode %#o)", st.Mode)
	}
	if err := attachClone(int(src.Fd()), "", fd, &mountOpts{}); err != nil {
		return fmt.Errorf("mount console %s: %w", slave, err)
	}
	return nil
}

func checkPty(fd int) error {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	major := unix.Major(st.Rdev)
	if st.Mode&unix.S_IFMT != unix.S_IFCHR || major < unix98PtySlaveMajor || major >= unix98PtySlaveMajor+8 {
		return fmt.Errorf("not a pty slave (mode %#o, device %d:%d)", st.Mode, major, unix.Minor(st.Rdev))
	}
	var fs unix.Statfs_t
	if err := unix.Fstatfs(fd, &fs); err != nil {
		return err
	}
	if fs.Type != unix.DEVPTS_SUPER_MAGIC {
		return fmt.Errorf("not on devpts")
	}
	return nil
}
