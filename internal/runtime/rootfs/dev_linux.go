package rootfs

import (
	"fmt"
	"os"
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"cove/internal/pathrs"
)

// defaultDevices are created in every container /dev that is not a bind
// mount from the host.
var defaultDevices = []specs.LinuxDevice{
	{Path: "/dev/null", Type: "c", Major: 1, Minor: 3},
	{Path: "/dev/zero", Type: "c", Major: 1, Minor: 5},
	{Path: "/dev/full", Type: "c", Major: 1, Minor: 7},
	{Path: "/dev/random", Type: "c", Major: 1, Minor: 8},
	{Path: "/dev/urandom", Type: "c", Major: 1, Minor: 9},
	{Path: "/dev/tty", Type: "c", Major: 5, Minor: 0},
}

// devLinks are the symlinks made in /dev: name -> target.
var devLinks = [][2]string{
	{"fd", "/proc/self/fd"},
	{"stdin", "/proc/self/fd/0"},
	{"stdout", "/proc/self/fd/1"},
	{"stderr", "/proc/self/fd/2"},
	{"core", "/proc/kcore"},
}

func populateDev(c *Config) error {
	devs := append([]specs.LinuxDevice{}, c.Devices...)
	for _, d := range defaultDevices {
		dup := false
		for _, s := range c.Devices {
			dup = dup || filepath.Clean(s.Path) == d.Path
		}
		if !dup {
			devs = append(devs, d)
		}
	}
	for _, d := range devs {
		if err := createDevice(c, d); err != nil {
			return fmt.Errorf("device %s: %w", d.Path, err)
		}
	}
	dev, err := pathrs.MkdirAllInRoot(c.Rootfs, "/dev", 0o755)
	if err != nil {
		return fmt.Errorf("mkdir /dev: %w", err)
	}
	defer dev.Close()
	dfd := int(dev.Fd())
	for _, l := range devLinks {
		if _, err := os.Stat(l[1]); l[0] == "core" && err != nil {
			continue // as runc: only on kernels with a /proc/kcore
		}
		if err := unix.Symlinkat(l[1], dfd, l[0]); err != nil && err != unix.EEXIST {
			return fmt.Errorf("symlink /dev/%s: %w", l[0], err)
		}
	}
	if err := unix.Unlinkat(dfd, "ptmx", 0); err != nil && err != unix.ENOENT {
		return fmt.Errorf("remove /dev/ptmx: %w", err)
	}
	if err := unix.Symlinkat("pts/ptmx", dfd, "ptmx"); err != nil {
		return fmt.Errorf("symlink /dev/ptmx: %w", err)
	}
	return nil
}

func deviceType(t string) (uint32, error) {
	switch t {
	case "c", "u":
		return unix.S_IFCHR, nil
	case "b":
		return unix.S_IFBLK, nil
	case "p":
		return unix.S_IFIFO, nil
	}
	return 0, fmt.Errorf("unknown device type %q", t)
}

func createDevice(c *Config, d specs.LinuxDevice) error {
	typ, err := deviceType(d.Type)
	if err != nil {
		return err
	}
	p := filepath.Clean("/" + d.Path)
	if c.UserNS {
		return bindDevice(c, p)
	}
	mode := uint32(0o666)
	if d.FileMode != nil {
		mode = uint32(d.FileMode.Perm())
	}
	var uid, gid int
	if d.UID != nil {
		uid = int(*d.UID)
	}
	if d.GID != nil {
		gid = int(*d.GID)
	}
	var rdev uint64
	if typ != unix.S_IFIFO {
		rdev = unix.Mkdev(uint32(d.Major), uint32(d.Minor))
	}
	dir, base := filepath.Split(p)
	parent, err := pathrs.MkdirAllInRoot(c.Rootfs, dir, 0o755)
	if err != nil {
		return err
	}
	defer parent.Close()
	pfd := int(parent.Fd())
	err = unix.Mknodat(pfd, base, typ|mode, int(rdev))
	if err == unix.EEXIST && !isNode(pfd, base, typ, rdev) {
		// Something else is in the way (maybe a symlink): replace it.
		if err := unix.Unlinkat(pfd, base, 0); err != nil {
			return fmt.Errorf("remove %s: %w", p, err)
		}
		err = unix.Mknodat(pfd, base, typ|mode, int(rdev))
	}
	if err != nil && err != unix.EEXIST {
		return fmt.Errorf("mknod: %w", err)
	}
	fd, err := unix.Openat(pfd, base, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open: %w", err)
	}
	f := os.NewFile(uintptr(fd), p)
	defer f.Close()
	if !isNode(fd, "", typ, rdev) {
		return fmt.Errorf("%s changed under us", p)
	}
	if err := unix.Fchownat(fd, "", uid, gid, unix.AT_EMPTY_PATH|unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("chown: %w", err)
	}
	// chmod(2) through the magic link acts on the inode fd holds; mknod's
	// mode went through the umask.
	if err := unix.Fchmodat(unix.AT_FDCWD, pathrs.ProcfdPath(f), mode, 0); err != nil {
		return fmt.Errorf("chmod: %w", err)
	}
	return nil
}

// isNode reports whether dirFd/name (dirFd itself for "") is a node of type
// typ and device number rdev, without following a symlink.
func isNode(dirFd int, name string, typ uint32, rdev uint64) bool {
	var st unix.Stat_t
	flags := unix.AT_SYMLINK_NOFOLLOW
	if name == "" {
		flags |= unix.AT_EMPTY_PATH
	}
	if err := unix.Fstatat(dirFd, name, &st, flags); err != nil {
		return false
	}
	return st.Mode&unix.S_IFMT == typ && (typ == unix.S_IFIFO || st.Rdev == rdev)
}

// bindDevice creates an empty file at p in the root and bind-mounts the
// host's node at the same path onto it (mknod does not work in a user
// namespace).
func bindDevice(c *Config, p string) error {
	dst, err := pathrs.CreateInRoot(c.Rootfs, p, 0o600)
	if err != nil {
		return err
	}
	defer dst.Close()
	return attachClone(unix.AT_FDCWD, p, int(dst.Fd()), &mountOpts{})
}
