package rootfs

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func init() {
	scenarios["propagation"] = scenario{
		pre: func(c *Config, arg string, r result) error {
			// Make the bind source a shared mount so that a slave of it
			// shows a master: field.
			if err := unix.Mount(arg, arg, "", unix.MS_BIND, ""); err != nil {
				return err
			}
			return unix.Mount("", arg, "", unix.MS_SHARED, "")
		},
		probe: func(c *Config, arg string, r result) error { return mountinfo(r) },
	}
	scenarios["simple"] = scenario{
		probe: func(c *Config, arg string, r result) error {
			b, err := os.ReadFile("/etc/marker")
			r["marker"] = string(b) + " " + errName(err)
			r["cwd"], _ = os.Getwd()
			_, err = os.Stat(arg)
			r["host_visible"] = errName(err)
			return mountinfo(r)
		},
	}
}

func TestPropagation(t *testing.T) {
	_, root := newRootfs(t)
	src := t.TempDir()
	c := &Config{
		Rootfs:      root,
		Propagation: "shared",
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc"},
			{Destination: "/data/slave", Type: "bind", Source: src, Options: []string{"rbind", "rslave"}},
			{Destination: "/data/private", Type: "bind", Source: src, Options: []string{"bind", "private"}},
			{Destination: "/data/shared", Type: "tmpfs", Source: "tmpfs", Options: []string{"rshared"}},
			{Destination: "/data/peer", Type: "bind", Source: src, Options: []string{"bind"}},
		},
	}
	r := run(t, "propagation", c, src, 0)
	if r["prepare_err"]+r["pivot_err"]+r["finalize_err"] != "" {
		t.Fatalf("errors: %v", r)
	}
	if m := mustMount(t, r, "/"); !hasOptional(m, "shared:") {
		t.Errorf("/ optional fields %v, want shared:", m.optional)
	}
	if m := mustMount(t, r, "/data/slave"); !hasOptional(m, "master:") || hasOptional(m, "shared:") {
		t.Errorf("/data/slave optional fields %v, want master: only", m.optional)
	}
	if m := mustMount(t, r, "/data/private"); len(m.optional) != 0 {
		t.Errorf("/data/private optional fields %v, want none", m.optional)
	}
	if m := mustMount(t, r, "/data/shared"); !hasOptional(m, "shared:") {
		t.Errorf("/data/shared optional fields %v, want shared:", m.optional)
	}
	// A plain bind of a shared source joins its peer group.
	if m := mustMount(t, r, "/data/peer"); !hasOptional(m, "shared:") {
		t.Errorf("/data/peer optional fields %v, want shared:", m.optional)
	}
}

func TestDefaultPropagation(t *testing.T) {
	_, root := newRootfs(t)
	c := &Config{Rootfs: root, Mounts: []specs.Mount{{Destination: "/proc", Type: "proc", Source: "proc"}}}
	r := run(t, "simple", c, "/nonexistent", 0)
	if r["prepare_err"]+r["pivot_err"]+r["finalize_err"] != "" {
		t.Fatalf("errors: %v", r)
	}
	if m := mustMount(t, r, "/"); hasOptional(m, "shared:") {
		t.Errorf("/ is shared by default: %v", m.optional)
	}
	if r["marker"] != "rootfs ok" || r["cwd"] != "/" {
		t.Errorf("marker %q cwd %q", r["marker"], r["cwd"])
	}
	// Without a /dev mount the nodes are made in the rootfs directory.
	if got := describe(filepath.Join(root, "dev/null")); got != "c 1:3 0666 0:0" {
		t.Errorf("rootfs/dev/null: %s", got)
	}
}

func TestNoPivot(t *testing.T) {
	dir, root := newRootfs(t)
	c := &Config{
		Rootfs:  root,
		NoPivot: true,
		Mounts:  []specs.Mount{{Destination: "/proc", Type: "proc", Source: "proc"}},
	}
	r := run(t, "simple", c, filepath.Join(dir, "rootfs/etc"), 0)
	if r["prepare_err"]+r["pivot_err"]+r["finalize_err"] != "" {
		t.Fatalf("errors: %v", r)
	}
	if r["marker"] != "rootfs ok" || r["cwd"] != "/" {
		t.Errorf("marker %q cwd %q", r["marker"], r["cwd"])
	}
	if r["host_visible"] != "ENOENT" {
		t.Errorf("host path visible after chroot: %s", r["host_visible"])
	}
	mustMount(t, r, "/proc")
}

func TestCgroupNS(t *testing.T) {
	_, root := newRootfs(t)
	c := &Config{
		Rootfs:   root,
		CgroupNS: true,
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc"},
			{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"ro"}},
			{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"nosuid", "ro"}},
		},
	}
	r := run(t, "simple", c, "", syscall.CLONE_NEWCGROUP)
	if r["prepare_err"]+r["pivot_err"]+r["finalize_err"] != "" {
		t.Fatalf("errors: %v", r)
	}
	m := mustMount(t, r, "/sys/fs/cgroup/memory")
	if m.fstype != "cgroup" || m.root != "/" || !hasOpt(m.opts, "ro") || !hasOpt(m.superOpts, "memory") {
		t.Errorf("memory hierarchy: %+v", m)
	}
	if m := mustMount(t, r, "/sys/fs/cgroup/unified"); m.fstype != "cgroup2" || m.root != "/" {
		t.Errorf("unified hierarchy: %+v", m)
	}
	if m := mustMount(t, r, "/sys/fs/cgroup/systemd"); !hasOpt(m.superOpts, "name=systemd") {
		t.Errorf("named hierarchy: %+v", m)
	}
}

func init() {
	scenarios["devices"] = scenario{
		probe: func(c *Config, arg string, r result) error {
			for _, d := range []string{"null", "zero", "tty", "fuse"} {
				r["dev_"+d] = describe("/dev/" + d)
			}
			r["write_null"] = tryWrite("/dev/null")
			return mountinfo(r)
		},
	}
}

// TestUserNSDevices checks the user-namespace way of making devices (bind
// the host nodes onto files), here as real root so that no user namespace
// is needed.
func TestUserNSDevices(t *testing.T) {
	_, root := newRootfs(t)
	c := &Config{
		Rootfs: root,
		UserNS: true,
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc"},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "mode=755"}},
		},
		Devices:     []specs.LinuxDevice{{Path: "/dev/fuse", Type: "c", Major: 10, Minor: 229}},
		MaskedPaths: []string{"/proc/keys"},
	}
	r := run(t, "devices", c, "", 0)
	if r["prepare_err"]+r["pivot_err"]+r["finalize_err"] != "" {
		t.Fatalf("errors: %v", r)
	}
	if !strings.HasPrefix(r["dev_null"], "c 1:3 ") || !strings.HasPrefix(r["dev_zero"], "c 1:5 ") ||
		!strings.HasPrefix(r["dev_tty"], "c 5:0 ") || !strings.HasPrefix(r["dev_fuse"], "c 10:229 ") {
		t.Errorf("devices: %v", r)
	}
	if r["write_null"] != "ok" {
		t.Errorf("write /dev/null: %s", r["write_null"])
	}
	if m := mustMount(t, r, "/dev/null"); m.fstype != "devtmpfs" || m.root != "/null" {
		t.Errorf("/dev/null mount: %+v", m)
	}
	mustMount(t, r, "/proc/keys")
}

// TestUserNS runs in a real user namespace without its own network
// namespace, where sysfs cannot be mounted and is rbound from the host.
func TestUserNS(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	_, root := newRootfs(t)
	c := &Config{
		Rootfs: root,
		UserNS: true,
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc"},
			{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "ro"}},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "mode=755"}},
		},
	}
	r := runUserNS(t, "devices", c)
	if r["prepare_err"]+r["pivot_err"]+r["finalize_err"] != "" {
		t.Fatalf("errors: %v", r)
	}
	if m := mustMount(t, r, "/sys"); m.fstype != "sysfs" || !hasOpt(m.opts, "ro") {
		t.Errorf("/sys: %+v", m)
	}
	if !strings.HasPrefix(r["dev_null"], "c 1:3 ") {
		t.Errorf("/dev/null: %s", r["dev_null"])
	}
}
