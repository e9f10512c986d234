package rootfs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"cove/internal/pathrs"
)

// Prepare sets up everything before the root switch: it makes "/" rslave
// recursively (or applies linux.rootfsPropagation there), bind-mounts
// Rootfs onto itself so that it is a mount point, performs every spec mount
// in order (destinations resolved and created inside the root only), and
// populates /dev unless /dev is a bind mount from the host.
//
// Preconditions: the caller is root in a new mount namespace, on a locked
// OS thread.
func Prepare(c *Config) error {
	if !filepath.IsAbs(c.Rootfs) {
		return fmt.Errorf("rootfs %q is not an absolute path", c.Rootfs)
	}
	if err := prepareRoot(c); err != nil {
		return err
	}
	setupDev := true
	for _, m := range c.Mounts {
		if filepath.Clean(m.Destination) == "/dev" && isBind(m) {
			setupDev = false
		}
	}
	for _, m := range c.Mounts {
		if err := mountEntry(c, m); err != nil {
			return err
		}
	}
	if setupDev {
		return populateDev(c)
	}
	return nil
}

func isBind(m specs.Mount) bool {
	return m.Type == "bind" || slices.Contains(m.Options, "bind") || slices.Contains(m.Options, "rbind")
}

// propagationFlags maps a linux.rootfsPropagation value to mount(2) flags.
func propagationFlags(p string) (uintptr, error) {
	f, ok := propOpts[p]
	if !ok {
		return 0, fmt.Errorf("unknown rootfs propagation %q", p)
	}
	return f, nil
}

func prepareRoot(c *Config) error {
	flags := uintptr(unix.MS_SLAVE | unix.MS_REC)
	if c.Propagation != "" {
		f, err := propagationFlags(c.Propagation)
		if err != nil {
			return err
		}
		// An unbindable tree cannot be bind-mounted as the new root: keep
		// the host side rslave; Finalize makes the new root unbindable.
		if f&unix.MS_UNBINDABLE == 0 {
			flags = f
		}
	}
	if err := unix.Mount("", "/", "", flags, ""); err != nil {
		return fmt.Errorf("set propagation of /: %w", err)
	}
	// pivot_root and MS_MOVE refuse a root whose parent mount is shared.
	rootfs, err := filepath.EvalSymlinks(c.Rootfs)
	if err != nil {
		return fmt.Errorf("rootfs %s: %w", c.Rootfs, err)
	}
	mounts, err := readMountinfo()
	if err != nil {
		return fmt.Errorf("read mountinfo: %w", err)
	}
	if m := mountFor(mounts, rootfs); m != nil && hasOptional(m, "shared:") {
		if err := unix.Mount("", m.mountpoint, "", unix.MS_PRIVATE, ""); err != nil {
			return fmt.Errorf("make %s private: %w", m.mountpoint, err)
		}
	}
	if err := unix.Mount(rootfs, rootfs, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind mount rootfs %s: %w", rootfs, err)
	}
	return nil
}

func hasOptional(m *mountInfo, prefix string) bool {
	for _, o := range m.optional {
		if strings.HasPrefix(o, prefix) {
			return true
		}
	}
	return false
}

func mountEntry(c *Config, m specs.Mount) error {
	if !strings.HasPrefix(m.Destination, "/") {
		return fmt.Errorf("mount destination %q is not an absolute path", m.Destination)
	}
	dest := filepath.Clean(m.Destination)
	o, err := parseOptions(m.Type, m.Options)
	if err != nil {
		return fmt.Errorf("mount %s: %w", dest, err)
	}
	switch {
	case o.bind:
		err = bindMount(c, m.Source, dest, o)
	case m.Type == "cgroup":
		err = mountCgroup(c, dest, o)
	case m.Type == "sysfs":
		err = mountSysfs(c, m.Source, dest, o)
	default:
		err = mountFS(c, m.Type, m.Source, dest, o)
	}
	if err != nil {
		return fmt.Errorf("mount %s: %w", dest, err)
	}
	return nil
}

// bindMount clones src (recursively for rbind), sets the requested flags on
// the detached copy and attaches it to the destination's descriptor.
func bindMount(c *Config, src, dest string, o *mountOpts) error {
	var st unix.Stat_t
	if err := unix.Stat(src, &st); err != nil {
		return fmt.Errorf("stat source %s: %w", src, err)
	}
	var dst *os.File
	var err error
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		dst, err = pathrs.MkdirAllInRoot(c.Rootfs, dest, 0o755)
	} else {
		dst, err = pathrs.CreateInRoot(c.Rootfs, dest, 0o644)
	}
	if err != nil {
		return err
	}
	defer dst.Close()
	return attachClone(unix.AT_FDCWD, src, int(dst.Fd()), o)
}

// attachClone clones the mount at dirFd/path (path "" means dirFd itself)
// with open_tree(2), applies o's flags to the detached clone with
// mount_setattr(2), attaches it on dstFd with move_mount(2), and then
// applies o's propagation changes.
func attachClone(dirFd int, path string, dstFd int, o *mountOpts) error {
	flags := unix.OPEN_TREE_CLONE | unix.O_CLOEXEC
	if path == "" {
		flags |= unix.AT_EMPTY_PATH
	}
	if o.recursive {
		flags |= unix.AT_RECURSIVE
	}
	tree, err := unix.OpenTree(dirFd, path, uint(flags))
	if err != nil {
		return fmt.Errorf("open_tree %s: %w", path, err)
	}
	defer unix.Close(tree)
	if a := o.attr(); !emptyAttr(a) {
		if err := unix.MountSetattr(tree, "", unix.AT_EMPTY_PATH, &a); err != nil {
			return fmt.Errorf("mount_setattr: %w", err)
		}
	}
	if !emptyAttr(o.rec) {
		if err := unix.MountSetattr(tree, "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, &o.rec); err != nil {
			return fmt.Errorf("mount_setattr recursive: %w", err)
		}
	}
	if err := unix.MoveMount(tree, "", dstFd, "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH); err != nil {
		return fmt.Errorf("move_mount: %w", err)
	}
	return applyProp(tree, o.prop)
}

// applyProp changes the propagation of the mount whose root fd is.
func applyProp(fd int, prop []uintptr) error {
	for _, p := range prop {
		attr := unix.MountAttr{Propagation: uint64(p &^ unix.MS_REC)}
		flags := uint(unix.AT_EMPTY_PATH)
		if p&unix.MS_REC != 0 {
			flags |= unix.AT_RECURSIVE
		}
		if err := unix.MountSetattr(fd, "", flags, &attr); err != nil {
			return fmt.Errorf("set propagation: %w", err)
		}
	}
	return nil
}

// mountFS mounts a new filesystem of type typ with mount(2) onto the
// /proc/self/fd path of the destination's descriptor, then applies the
// recursive flags and propagation to the new mount.
func mountFS(c *Config, typ, src, dest string, o *mountOpts) error {
	// proc and sysfs must not land on a symlink (CVE-2019-19921).
	dst, err := openDirDest(c.Rootfs, dest, typ == "proc" || typ == "sysfs")
	if err != nil {
		return err
	}
	defer dst.Close()
	if src == "" {
		src = typ
	}
	if err := unix.Mount(src, pathrs.ProcfdPath(dst), typ, o.flags, o.dataString()); err != nil {
		return fmt.Errorf("mount %s: %w", typ, err)
	}
	return afterMount(c, dest, o)
}

// afterMount applies the recursive attributes and propagation of o to the
// mount now on top of dest.
func afterMount(c *Config, dest string, o *mountOpts) error {
	if emptyAttr(o.rec) && len(o.prop) == 0 {
		return nil
	}
	m, err := pathrs.OpenInRoot(c.Rootfs, dest, unix.O_PATH)
	if err != nil {
		return err
	}
	defer m.Close()
	if !emptyAttr(o.rec) {
		if err := unix.MountSetattr(int(m.Fd()), "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, &o.rec); err != nil {
			return fmt.Errorf("mount_setattr recursive: %w", err)
		}
	}
	return applyProp(int(m.Fd()), o.prop)
}

// openDirDest creates the directory dest inside root and returns an O_PATH
// handle of it. With noFollow, the last component may not be a symlink.
func openDirDest(root, dest string, noFollow bool) (*os.File, error) {
	if !noFollow {
		return pathrs.MkdirAllInRoot(root, dest, 0o755)
	}
	dir, base := filepath.Split(dest)
	if base == "" {
		return nil, fmt.Errorf("refusing to mount over the root")
	}
	parent, err := pathrs.MkdirAllInRoot(root, dir, 0o755)
	if err != nil {
		return nil, err
	}
	defer parent.Close()
	pfd := int(parent.Fd())
	if err := unix.Mkdirat(pfd, base, 0o755); err != nil && err != unix.EEXIST {
		return nil, fmt.Errorf("mkdir %s: %w", dest, err)
	}
	fd, err := unix.Openat(pfd, base, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", dest, err)
	}
	f := os.NewFile(uintptr(fd), dest)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		f.Close()
		return nil, err
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		return f, nil
	case unix.S_IFLNK:
		f.Close()
		return nil, fmt.Errorf("destination %s is a symlink", dest)
	default:
		f.Close()
		return nil, fmt.Errorf("destination %s: %w", dest, unix.ENOTDIR)
	}
}

// mountSysfs mounts sysfs. In a user namespace that does not own the
// network namespace the kernel refuses; then, like runc, rbind the host's
// /sys instead.
func mountSysfs(c *Config, src, dest string, o *mountOpts) error {
	err := mountFS(c, "sysfs", src, dest, o)
	if err == nil || !c.UserNS || !errors.Is(err, unix.EPERM) {
		return err
	}
	dst, err := openDirDest(c.Rootfs, dest, true)
	if err != nil {
		return err
	}
	defer dst.Close()
	rb := *o
	rb.bind, rb.recursive = true, true
	return attachClone(unix.AT_FDCWD, "/sys", int(dst.Fd()), &rb)
}
