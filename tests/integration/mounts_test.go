package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// mountLine finds the mountinfo line whose mount point is dst.
func mountLine(mountinfo, dst string) string {
	for _, l := range strings.Split(mountinfo, "\n") {
		f := strings.Fields(l)
		if len(f) > 5 && f[4] == dst {
			return l
		}
	}
	return ""
}

func TestMounts(t *testing.T) {
	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "file"), []byte("hostdata"), 0o644)
	sub := filepath.Join(src, "sub")
	os.Mkdir(sub, 0o755)
	script := `cat /proc/self/mountinfo; echo ===;
cat /ro/file; echo;
echo x > /ro/new 2>/dev/null && echo ro-writable || echo ro-denied;
echo x > /rw/new && echo rw-ok;
touch /rro/sub/x 2>/dev/null && echo rro-writable || echo rro-denied;
echo x > /tmpfs/f && stat -c %a /tmpfs;
cat /proc/timer_list | wc -c; echo x > /proc/sys/kernel/hostname 2>/dev/null && echo sys-writable || echo sys-denied`
	e := newEnv(t, sh(script), func(s *specs.Spec) {
		s.Mounts = append(s.Mounts,
			specs.Mount{Destination: "/ro", Type: "bind", Source: src, Options: []string{"bind", "ro", "nosuid", "nodev"}},
			specs.Mount{Destination: "/rw", Type: "bind", Source: src, Options: []string{"rbind", "rw"}},
			specs.Mount{Destination: "/rro", Type: "bind", Source: src, Options: []string{"rbind", "rro"}},
			specs.Mount{Destination: "/tmpfs", Type: "tmpfs", Source: "tmpfs", Options: []string{"size=1m", "mode=700", "noexec"}},
			specs.Mount{Destination: "/a/b/../c", Type: "tmpfs", Source: "tmpfs"},
		)
	})
	// A submount of the bind source: rro must cover it, ro must not.
	if err := mountTmpfs(sub); err != nil {
		t.Fatal(err)
	}
	defer unmount(sub)
	out := e.mustRun("c1")
	info, rest, _ := strings.Cut(out, "===\n")
	results := strings.Fields(rest)
	want := []string{"hostdata", "ro-denied", "rw-ok", "rro-denied", "700", "0", "sys-denied"}
	if strings.Join(results, " ") != strings.Join(want, " ") {
		t.Errorf("results %v, want %v", results, want)
	}
	checks := []struct{ dst, want string }{
		{"/ro", " ro,nosuid,nodev"},
		{"/tmpfs", "size=1024k,mode=700"},
		{"/tmpfs", "noexec"},
		{"/a/c", " - tmpfs "},
		{"/proc", " - proc "},
		{"/dev", " - tmpfs "},
		{"/dev/pts", " - devpts "},
		{"/dev/shm", " - tmpfs "},
		{"/dev/mqueue", " - mqueue "},
		{"/sys", " - sysfs "},
	}
	for _, c := range checks {
		if l := mountLine(info, c.dst); !strings.Contains(l, c.want) {
			t.Errorf("mount %s: want %q in %q", c.dst, c.want, l)
		}
	}
	if l := mountLine(info, "/rro/sub"); !strings.Contains(l, " ro,") {
		t.Errorf("rro submount not read-only: %q", l)
	}
	if _, err := os.Stat(filepath.Join(src, "new")); err != nil {
		t.Errorf("rw bind write did not reach the host: %v", err)
	}
}

func TestDevices(t *testing.T) {
	mode := os.FileMode(0o640)
	uid, gid := uint32(1000), uint32(1000)
	e := newEnv(t, sh(`for f in null zero full random urandom tty; do stat -c "%n %F %t:%T %a" /dev/$f; done;
for f in ptmx fd stdin stdout stderr; do readlink /dev/$f; done;
stat -c "%n %F %t:%T %a %u:%g" /dev/mydev/loopish; head -c 4 /dev/zero | wc -c`), func(s *specs.Spec) {
		s.Linux.Devices = []specs.LinuxDevice{{Path: "/dev/mydev/loopish", Type: "b", Major: 7, Minor: 200, FileMode: &mode, UID: &uid, GID: &gid}}
	})
	out := e.mustRun("c1")
	for _, want := range []string{
		"/dev/null character special file 1:3 666",
		"/dev/zero character special file 1:5 666",
		"/dev/full character special file 1:7 666",
		"/dev/random character special file 1:8 666",
		"/dev/urandom character special file 1:9 666",
		"/dev/tty character special file 5:0 666",
		"pts/ptmx\n/proc/self/fd\n/proc/self/fd/0\n/proc/self/fd/1\n/proc/self/fd/2",
		"/dev/mydev/loopish block special file 7:c8 640 1000:1000",
		"\n4\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
}

func TestMaskedAndReadonlyPaths(t *testing.T) {
	e := newEnv(t, sh(`wc -c < /proc/timer_list; wc -c < /proc/keys; ls /proc/acpi 2>/dev/null | wc -l; echo 1 > /proc/sysrq-trigger 2>/dev/null && echo sysrq-writable || echo sysrq-denied; echo x > /proc/sys/vm/drop_caches 2>/dev/null && echo ro-writable || echo ro-denied`), nil)
	out := strings.Fields(e.mustRun("c1"))
	if strings.Join(out, " ") != "0 0 0 sysrq-denied ro-denied" {
		t.Fatalf("got %v", out)
	}
}

func TestReadonlyRootAndNoPivot(t *testing.T) {
	for _, noPivot := range []bool{false, true} {
		e := newEnv(t, sh(`touch /x 2>/dev/null && echo root-writable || echo root-ro; touch /tmp/y 2>/dev/null && echo tmp-writable || echo tmp-ro; grep -c " / " /proc/self/mountinfo`), func(s *specs.Spec) {
			s.Root.Readonly = true
		})
		var extra []string
		if noPivot {
			extra = []string{"--no-pivot"}
		}
		out, errOut, code := e.run("c1", extra...)
		if code != 0 {
			t.Fatalf("no-pivot=%v: exit %d: %s", noPivot, code, errOut)
		}
		f := strings.Fields(out)
		if len(f) != 3 || f[0] != "root-ro" || f[1] != "tmp-ro" {
			t.Errorf("no-pivot=%v: %q", noPivot, out)
		}
	}
}

func TestRootfsPropagation(t *testing.T) {
	e := newEnv(t, sh(`awk '$5 == "/"' /proc/self/mountinfo`), func(s *specs.Spec) { s.Linux.RootfsPropagation = "shared" })
	if out := e.mustRun("c1"); !strings.Contains(out, "shared:") {
		t.Errorf("rootfsPropagation shared: %q", out)
	}
	e2 := newEnv(t, sh(`awk '$5 == "/"' /proc/self/mountinfo`), func(s *specs.Spec) { s.Linux.RootfsPropagation = "private" })
	if out := e2.mustRun("c2"); strings.Contains(out, "shared:") || strings.Contains(out, "master:") {
		t.Errorf("rootfsPropagation private: %q", out)
	}
}

func TestMountDestinationStaysInRoot(t *testing.T) {
	outside := t.TempDir()
	e := newEnv(t, []string{"true"}, func(s *specs.Spec) {
		s.Mounts = append(s.Mounts,
			specs.Mount{Destination: "/escape/../../../../" + strings.TrimPrefix(outside, "/") + "/a", Type: "tmpfs", Source: "tmpfs"},
			specs.Mount{Destination: "/link/b", Type: "tmpfs", Source: "tmpfs"})
	})
	// /link is a symlink to the host directory: it must resolve inside the root.
	os.Symlink(outside, filepath.Join(e.bundle, "rootfs/link"))
	e.mustRun("c1")
	ents, _ := os.ReadDir(outside)
	if len(ents) != 0 {
		t.Errorf("mount destinations created outside the root: %v", ents)
	}
	if _, err := os.Stat(filepath.Join(e.bundle, "rootfs", outside, "b")); err != nil {
		t.Errorf("symlinked destination not created inside the root: %v", err)
	}
}
