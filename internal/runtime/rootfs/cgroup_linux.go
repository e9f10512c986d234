package rootfs

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/sys/unix"

	"cove/internal/pathrs"
)

// mountCgroup handles a mount of type "cgroup". On a pure cgroup v2 host it
// mounts cgroup2. On a v1 or hybrid host it mounts a tmpfs at dest and under
// it one directory per host v1 hierarchy (plus "unified" for the hybrid
// cgroup2): a fresh cgroup mount with a cgroup namespace, or a bind of the
// container's own cgroup directory without one.
func mountCgroup(c *Config, dest string, o *mountOpts) error {
	mounts, err := readMountinfo()
	if err != nil {
		return fmt.Errorf("read mountinfo: %w", err)
	}
	v1, v2 := cgroupHierarchies(mounts)
	own, err := ownCgroups()
	if err != nil {
		return err
	}
	if len(v1) == 0 {
		return mountCgroupDir(c, "cgroup2", "", dest, v2, own[""], o)
	}
	tmpfs := *o
	tmpfs.flags &^= unix.MS_RDONLY
	tmpfs.prop, tmpfs.rec = nil, unix.MountAttr{}
	tmpfs.data = []string{"mode=755"}
	if err := mountFS(c, "tmpfs", "tmpfs", dest, &tmpfs); err != nil {
		return err
	}
	for i := range v1 {
		h := &v1[i]
		ctrls := cgroupControllers(h.superOpts)
		name := filepath.Base(h.mountpoint)
		sub := filepath.Join(dest, name)
		if err := mountCgroupDir(c, "cgroup", strings.Join(ctrls, ","), sub, h, own[key(ctrls)], o); err != nil {
			return err
		}
		if err := comountLinks(c, dest, name, ctrls); err != nil {
			return err
		}
	}
	if v2 != nil {
		if err := mountCgroupDir(c, "cgroup2", "", filepath.Join(dest, "unified"), v2, own[""], o); err != nil {
			return err
		}
	}
	if o.flags&unix.MS_RDONLY != 0 {
		m, err := pathrs.OpenInRoot(c.Rootfs, dest, unix.O_PATH|unix.O_DIRECTORY)
		if err != nil {
			return err
		}
		defer m.Close()
		attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY}
		if err := unix.MountSetattr(int(m.Fd()), "", unix.AT_EMPTY_PATH, &attr); err != nil {
			return fmt.Errorf("remount tmpfs read-only: %w", err)
		}
	}
	return afterMount(c, dest, &mountOpts{prop: o.prop, rec: o.rec})
}

// cgroupHierarchies picks the v1 hierarchies and the cgroup2 mount from
// mountinfo. The first mount of each hierarchy wins: the host's own, which
// comes before any later mount of the same hierarchy elsewhere (CRIU's
// cgroup yard, a nested runtime). A second one would be mounted on top of
// the first in the container, which fails with EBUSY.
func cgroupHierarchies(mounts []mountInfo) (v1 []mountInfo, v2 *mountInfo) {
	seen := map[string]bool{}
	for i, m := range mounts {
		switch m.fstype {
		case "cgroup":
			k := key(cgroupControllers(m.superOpts))
			if !seen[k] {
				seen[k] = true
				v1 = append(v1, m)
			}
		case "cgroup2":
			if v2 == nil {
				v2 = &mounts[i]
			}
		}
	}
	return v1, v2
}

// mountCgroupDir mounts one hierarchy at dest: a fresh cgroup filesystem
// with a cgroup namespace, else a bind of the process's own cgroup
// directory of host mount h. Without a cgroup namespace a fresh cgroup2
// mount is still tried first, as runc does.
func mountCgroupDir(c *Config, typ, data, dest string, h *mountInfo, ownPath string, o *mountOpts) error {
	fresh := *o
	fresh.prop, fresh.rec = nil, unix.MountAttr{}
	fresh.data = nil
	if data != "" {
		fresh.data = []string{data}
	}
	if c.CgroupNS || h == nil {
		return mountFreshCgroup(c, typ, dest, &fresh)
	}
	if typ == "cgroup2" {
		err := mountFS(c, typ, typ, dest, &fresh)
		if err == nil {
			return nil
		}
	}
	src := h.mountpoint
	if rel, ok := strings.CutPrefix(ownPath, h.root); ok && ownPath != "" {
		src = filepath.Join(h.mountpoint, rel)
	}
	if _, err := os.Stat(src); err != nil {
		src = h.mountpoint
	}
	b := fresh
	b.bind, b.recursive = true, false
	dst, err := pathrs.MkdirAllInRoot(c.Rootfs, dest, 0o755)
	if err != nil {
		return err
	}
	defer dst.Close()
	if err := attachClone(unix.AT_FDCWD, src, int(dst.Fd()), &b); err != nil {
		return fmt.Errorf("bind %s: %w", src, err)
	}
	return nil
}

// mountFreshCgroup mounts a new cgroup filesystem of type typ at dest; the
// error names the hierarchy.
func mountFreshCgroup(c *Config, typ, dest string, o *mountOpts) error {
	if err := mountFS(c, typ, typ, dest, o); err != nil {
		return fmt.Errorf("%s %s at %s: %w", typ, strings.Join(o.data, ","), dest, err)
	}
	return nil
}

// cgroupControllers returns the controller (and name=) options of a v1
// cgroup mount's super options.
func cgroupControllers(superOpts string) []string {
	var out []string
	for _, o := range strings.Split(superOpts, ",") {
		switch {
		case o == "rw" || o == "ro" || o == "clone_children" || o == "noprefix" || o == "xattr" ||
			o == "cpuset_v2_mode" || strings.HasPrefix(o, "release_agent="):
		default:
			out = append(out, o)
		}
	}
	return out
}

func key(ctrls []string) string {
	s := slices.Clone(ctrls)
	slices.Sort(s)
	return strings.Join(s, ",")
}

// ownCgroups maps the sorted controller list of each hierarchy in
// /proc/self/cgroup ("" for cgroup2) to this process's path in it.
func ownCgroups() (map[string]string, error) {
	f, err := os.Open("/proc/self/cgroup")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]string{}
	s := bufio.NewScanner(f)
	for s.Scan() {
		parts := strings.SplitN(s.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		var ctrls []string
		if parts[1] != "" {
			ctrls = strings.Split(parts[1], ",")
		}
		out[key(ctrls)] = parts[2]
	}
	return out, s.Err()
}

// comountLinks adds a symlink per controller of a comounted hierarchy
// ("cpu" -> "cpu,cpuacct"), as hosts do.
func comountLinks(c *Config, dest, name string, ctrls []string) error {
	if len(ctrls) < 2 {
		return nil
	}
	dir, err := pathrs.OpenInRoot(c.Rootfs, dest, unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return err
	}
	defer dir.Close()
	for _, ctl := range ctrls {
		if ctl == name || strings.Contains(ctl, "=") {
			continue
		}
		if err := unix.Symlinkat(name, int(dir.Fd()), ctl); err != nil && err != unix.EEXIST {
			return fmt.Errorf("symlink %s: %w", ctl, err)
		}
	}
	return nil
}
