package rootfs

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func TestParseOptions(t *testing.T) {
	o, err := parseOptions("tmpfs", []string{"nosuid", "ro", "rw", "noatime", "size=1m", "rshared", "rro", "rnoexec", "defaults"})
	if err != nil {
		t.Fatal(err)
	}
	if o.bind || o.flags != unix.MS_NOSUID|unix.MS_NOATIME || o.cleared != unix.MS_RDONLY {
		t.Errorf("flags %#x cleared %#x bind %v", o.flags, o.cleared, o.bind)
	}
	if o.dataString() != "size=1m" || len(o.prop) != 1 || o.prop[0] != unix.MS_SHARED|unix.MS_REC {
		t.Errorf("data %q prop %v", o.dataString(), o.prop)
	}
	if o.rec.Attr_set != unix.MOUNT_ATTR_RDONLY|unix.MOUNT_ATTR_NOEXEC {
		t.Errorf("rec %+v", o.rec)
	}
	a := o.attr()
	if a.Attr_set != unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NOATIME || a.Attr_clr != unix.MOUNT_ATTR_RDONLY|unix.MOUNT_ATTR__ATIME {
		t.Errorf("attr %+v", a)
	}
	o, _ = parseOptions("none", []string{"rbind"})
	if !o.bind || !o.recursive {
		t.Errorf("rbind: %+v", o)
	}
	if _, err := parseOptions("bind", []string{"idmap"}); err == nil {
		t.Error("idmap accepted")
	}
}

func TestUnescape(t *testing.T) {
	if got := unescape(`/a\040b\134c\011`); got != "/a b\\c\t" {
		t.Errorf("unescape = %q", got)
	}
}

func init() {
	scenarios["basic"] = scenario{
		pre: func(c *Config, arg string, r result) error {
			// A submount inside the rbind source, to check rro.
			return unix.Mount("tmpfs", filepath.Join(arg, "rec/sub"), "tmpfs", 0, "size=1m")
		},
		afterPivot: func(c *Config, arg string, r result) error {
			ptmx, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
			if err != nil {
				return err
			}
			defer ptmx.Close()
			if err := unix.IoctlSetPointerInt(int(ptmx.Fd()), unix.TIOCSPTLCK, 0); err != nil {
				return err
			}
			n, err := unix.IoctlGetInt(int(ptmx.Fd()), unix.TIOCGPTN)
			if err != nil {
				return err
			}
			r["console"] = errName(MountConsole("/dev/pts/" + strconv.Itoa(n)))
			r["console_file"] = errName(MountConsole("/etc/hello"))
			return nil
		},
		probe: func(c *Config, arg string, r result) error {
			r["write_ro"] = tryWrite("/data/ro/x")
			r["write_rro_sub"] = tryWrite("/data/rro/sub/x")
			r["write_rro_top"] = tryWrite("/data/rro/x")
			r["write_root"] = tryWrite("/newfile")
			r["write_tmp"] = tryWrite("/data/tmp/x")
			r["write_hostname"] = tryWrite("/proc/sys/kernel/hostname")
			r["write_timer_list"] = tryWrite("/proc/timer_list")
			b, err := os.ReadFile("/etc/hello")
			r["hello"] = string(b) + errName(err)
			b, err = os.ReadFile("/proc/keys")
			r["keys"] = strconv.Itoa(len(b)) + " " + errName(err)
			ents, err := os.ReadDir("/proc/acpi")
			r["acpi"] = strconv.Itoa(len(ents)) + " " + errName(err)
			ents, err = os.ReadDir("/data/secret")
			r["secret"] = strconv.Itoa(len(ents)) + " " + errName(err)
			r["write_secret"] = tryWrite("/data/secret/y")
			for _, d := range []string{"null", "zero", "full", "random", "urandom", "tty", "myzero", "fifo", "loopx", "sub/dir/node", "ptmx", "fd", "stdin", "core"} {
				r["dev_"+d] = describe("/dev/" + d)
			}
			for _, l := range []string{"ptmx", "fd", "stdin", "stdout", "stderr", "core"} {
				r["link_"+l], _ = os.Readlink("/dev/" + l)
			}
			ptmx, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
			r["open_ptmx"] = errName(err)
			if err == nil {
				ptmx.Close()
			}
			ents, err = os.ReadDir("/sys/fs/cgroup")
			var names []string
			for _, e := range ents {
				names = append(names, e.Name())
			}
			r["cgroup_dirs"] = strings.Join(names, ",") + " " + errName(err)
			_, err = os.Stat("/sys/fs/cgroup/memory/memory.limit_in_bytes")
			r["cgroup_memory_file"] = errName(err)
			r["write_cgroup"] = tryWrite("/sys/fs/cgroup/memory/x")
			r["cwd"], _ = os.Getwd()
			return mountinfo(r)
		},
	}
}

// basicConfig is a typical container: Docker-like mounts plus binds that
// exercise the flag handling.
func basicConfig(t *testing.T) (*Config, string) {
	dir, root := newRootfs(t)
	src := filepath.Join(dir, "src")
	for _, d := range []string{"rec/sub", "plain"} {
		if err := os.MkdirAll(filepath.Join(src, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(src, "hello"), []byte("hi"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root, "data/secret"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "data/secret/key"), []byte("k"), 0o600); err != nil {
		t.Fatal(err)
	}
	mode := os.FileMode(0o640)
	id := uint32(1000)
	c := &Config{
		Rootfs:   root,
		Readonly: true,
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
			{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
			{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
			{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"nosuid", "noexec", "nodev", "relatime", "ro"}},
			{Destination: "/data/ro", Type: "bind", Source: filepath.Join(src, "plain"), Options: []string{"ro", "nosuid", "nodev", "noexec"}},
			{Destination: "/etc/hello", Source: filepath.Join(src, "hello"), Options: []string{"bind", "ro"}},
			{Destination: "/data/rro", Source: filepath.Join(src, "rec"), Options: []string{"rbind", "rro"}},
			{Destination: "/data/flags", Source: filepath.Join(src, "plain"), Options: []string{"bind", "nosymfollow", "noatime"}},
			{Destination: "/data/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"size=1m", "mode=700"}},
			{Destination: "/data/unbindable", Type: "tmpfs", Source: "tmpfs", Options: []string{"runbindable"}},
			{Destination: "/data/other", Type: "ramfs", Source: "ramfs", Options: []string{"mode=711"}},
		},
		Devices: []specs.LinuxDevice{
			{Path: "/dev/myzero", Type: "c", Major: 1, Minor: 5, FileMode: &mode, UID: &id, GID: &id},
			{Path: "/dev/fifo", Type: "p"},
			{Path: "/dev/loopx", Type: "b", Major: 7, Minor: 0},
			{Path: "/dev/sub/dir/node", Type: "c", Major: 1, Minor: 7},
		},
		MaskedPaths:   []string{"/proc/kcore", "/proc/keys", "/proc/acpi", "/data/secret", "/does/not/exist"},
		ReadonlyPaths: []string{"/proc/sys", "/proc/sysrq-trigger", "/proc/timer_list", "/missing"},
	}
	return c, src
}

func TestBasic(t *testing.T) {
	c, src := basicConfig(t)
	r := run(t, "basic", c, src, 0)
	for _, k := range []string{"prepare_err", "pivot_err", "finalize_err"} {
		if r[k] != "" {
			t.Fatalf("%s: %s", k, r[k])
		}
	}
	want := map[string]string{
		"write_ro":           "EROFS",
		"write_rro_sub":      "EROFS",
		"write_rro_top":      "EROFS",
		"write_root":         "EROFS",
		"write_tmp":          "ok",
		"write_hostname":     "EROFS",
		"write_timer_list":   "EROFS",
		"write_secret":       "EROFS",
		"write_cgroup":       "EROFS",
		"hello":              "hiok",
		"keys":               "0 ok",
		"acpi":               "0 ok",
		"secret":             "0 ok",
		"console":            "ok",
		"dev_null":           "c 1:3 0666 0:0",
		"dev_zero":           "c 1:5 0666 0:0",
		"dev_full":           "c 1:7 0666 0:0",
		"dev_random":         "c 1:8 0666 0:0",
		"dev_urandom":        "c 1:9 0666 0:0",
		"dev_tty":            "c 5:0 0666 0:0",
		"dev_myzero":         "c 1:5 0640 1000:1000",
		"dev_fifo":           "p 0:0 0666 0:0",
		"dev_loopx":          "b 7:0 0666 0:0",
		"dev_sub/dir/node":   "c 1:7 0666 0:0",
		"link_ptmx":          "pts/ptmx",
		"link_fd":            "/proc/self/fd",
		"link_stdin":         "/proc/self/fd/0",
		"link_stdout":        "/proc/self/fd/1",
		"link_stderr":        "/proc/self/fd/2",
		"link_core":          "/proc/kcore",
		"open_ptmx":          "ok",
		"cgroup_memory_file": "ok",
		"cwd":                "/",
	}
	if _, err := os.Stat("/proc/kcore"); err != nil {
		want["link_core"] = "" // as runc: no /dev/core without /proc/kcore
	}
	for k, v := range want {
		if r[k] != v {
			t.Errorf("%s = %q, want %q", k, r[k], v)
		}
	}
	if !strings.Contains(r["console_file"], "not a pty slave") {
		t.Errorf("MountConsole of a regular file: %q", r["console_file"])
	}
	for _, d := range []string{"cpu", "memory", "pids", "unified"} {
		if !hasOpt(strings.Fields(r["cgroup_dirs"])[0], d) {
			t.Errorf("/sys/fs/cgroup lacks %s: %s", d, r["cgroup_dirs"])
		}
	}

	root := mustMount(t, r, "/")
	if !hasOpt(root.opts, "ro") {
		t.Errorf("/ not read-only: %s", root.opts)
	}
	checks := []struct {
		mp, fstype string
		opts       []string
		super      []string
	}{
		{"/proc", "proc", []string{"rw", "nosuid", "nodev", "noexec"}, nil},
		{"/dev", "tmpfs", []string{"nosuid"}, []string{"size=65536k", "mode=755"}},
		{"/dev/pts", "devpts", []string{"nosuid", "noexec"}, []string{"gid=5", "mode=620", "ptmxmode=666"}},
		{"/dev/shm", "tmpfs", []string{"nosuid", "nodev", "noexec"}, []string{"size=65536k"}},
		{"/dev/mqueue", "mqueue", []string{"nosuid", "nodev", "noexec"}, nil},
		{"/sys", "sysfs", []string{"ro", "nosuid", "nodev", "noexec"}, nil},
		{"/sys/fs/cgroup", "tmpfs", []string{"ro", "nosuid", "nodev", "noexec"}, nil},
		{"/sys/fs/cgroup/memory", "cgroup", []string{"ro", "nosuid", "nodev", "noexec"}, []string{"memory"}},
		{"/sys/fs/cgroup/unified", "cgroup2", []string{"ro", "nosuid"}, nil},
		{"/data/ro", "", []string{"ro", "nosuid", "nodev", "noexec"}, nil},
		{"/etc/hello", "", []string{"ro"}, nil},
		{"/data/rro", "", []string{"ro"}, nil},
		{"/data/rro/sub", "tmpfs", []string{"ro"}, nil},
		{"/data/flags", "", []string{"rw", "nosymfollow", "noatime"}, nil},
		{"/data/tmp", "tmpfs", []string{"rw"}, []string{"size=1024k", "mode=700"}},
		{"/data/other", "ramfs", nil, []string{"mode=711"}},
		{"/proc/keys", "", nil, nil},
		{"/proc/acpi", "tmpfs", []string{"ro"}, nil},
		{"/data/secret", "tmpfs", []string{"ro"}, nil},
		{"/proc/sys", "proc", []string{"ro", "nosuid", "nodev", "noexec"}, nil},
		{"/proc/timer_list", "proc", []string{"ro", "nosuid"}, nil},
		{"/dev/console", "devpts", nil, nil},
	}
	for _, ck := range checks {
		m := findMount(t, r, ck.mp)
		if m == nil {
			t.Errorf("no mount at %s", ck.mp)
			continue
		}
		if ck.fstype != "" && m.fstype != ck.fstype {
			t.Errorf("%s: fstype %s, want %s", ck.mp, m.fstype, ck.fstype)
		}
		for _, o := range ck.opts {
			if !hasOpt(m.opts, o) {
				t.Errorf("%s: options %s lack %s", ck.mp, m.opts, o)
			}
		}
		for _, o := range ck.super {
			if !hasOpt(m.superOpts, o) {
				t.Errorf("%s: super options %s lack %s", ck.mp, m.superOpts, o)
			}
		}
	}
	if m := mustMount(t, r, "/data/unbindable"); !hasOptional(m, "unbindable") {
		t.Errorf("/data/unbindable optional fields %v", m.optional)
	}
	if m := mustMount(t, r, "/proc/keys"); m.root != "/null" {
		t.Errorf("/proc/keys masked with %s of %s, want /dev/null", m.root, m.fstype)
	}
	if findMount(t, r, "/does/not/exist") != nil || findMount(t, r, "/missing") != nil {
		t.Error("missing masked or read-only path got a mount")
	}
}
