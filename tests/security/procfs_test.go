package security

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// TestFakeProc is CVE-2025-52881: the spec mounts a host directory over
// /proc (or /proc/sys) after procfs, holding fake sys/kernel files, so that
// the runtime's procfs writes would land in it. The sysctl must reach the
// real procfs (its value in the container's IPC namespace) or the create
// must fail; the fake files stay as they were; oom_score_adj, written by
// the runtime from the host, is set.
func TestFakeProc(t *testing.T) {
	resolverModes(t, func(t *testing.T, noOpenat2 bool) { fakeProc(t, noOpenat2) })
}

func fakeProc(t *testing.T, noOpenat2 bool) {
	for _, c := range []struct {
		over   string
		userns bool
	}{{"/proc", false}, {"/proc/sys", false}, {"/proc", true}} {
		over := c.over
		name := strings.ReplaceAll(over[1:], "/", "-")
		if c.userns {
			name += "-userns"
		}
		t.Run(name, func(t *testing.T) {
			fake := filepath.Join(t.TempDir(), "fakeproc")
			kernel := filepath.Join(fake, "sys/kernel")
			src := fake
			if over == "/proc/sys" {
				src = filepath.Join(fake, "sys")
			}
			if err := os.MkdirAll(kernel, 0o755); err != nil {
				t.Fatal(err)
			}
			fakeFile := filepath.Join(kernel, "shm_rmid_forced")
			if err := os.WriteFile(fakeFile, []byte("0\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			adj := 123
			e := newEnv(t, []string{"sleep", "100"}, func(s *specs.Spec) {
				s.Mounts = append(s.Mounts, specs.Mount{Destination: over, Type: "bind", Source: src, Options: []string{"rbind"}})
				s.Linux.Sysctl = map[string]string{"kernel.shm_rmid_forced": "1"}
				s.Process.OOMScoreAdj = &adj
				if c.userns {
					// The uid and gid maps are written by the runtime from
					// the host's /proc: the fake one cannot take them.
					s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
					s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
					s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
				}
			})
			e.noOpenat2 = noOpenat2
			if c.userns {
				// The container's root (host uid 100000) walks to its rootfs.
				for _, d := range []string{filepath.Dir(e.dir), e.dir, e.bundle} {
					os.Chmod(d, 0o755)
				}
			}
			id := "esc-fakeproc-" + name
			out, err := e.runtime("create", "--bundle", e.bundle, id)
			if b, _ := os.ReadFile(fakeFile); string(b) != "0\n" {
				t.Errorf("the runtime wrote the fake procfs file: %q", b)
			}
			if err != nil {
				if !strings.Contains(out, "procfs") {
					t.Errorf("create refused without naming procfs: %s", out)
				}
				return
			}
			pid := e.pid(id)
			real, err := exec.Command("nsenter", "-t", strconv.Itoa(pid), "-i", "cat", "/proc/sys/kernel/shm_rmid_forced").CombinedOutput()
			if err != nil || strings.TrimSpace(string(real)) != "1" {
				t.Errorf("sysctl not applied to the real procfs: %q (%v)", real, err)
			}
			if b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/oom_score_adj"); strings.TrimSpace(string(b)) != "123" {
				t.Errorf("oom_score_adj %q, want 123", b)
			}
			if c.userns {
				b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/uid_map")
				if f := strings.Fields(string(b)); len(f) != 3 || f[0] != "0" || f[1] != "100000" || f[2] != "65536" {
					t.Errorf("uid_map %q, want 0 100000 65536", b)
				}
			}
		})
	}
}

// TestSysctlRefused is CVE-2022-0811 and its family: values smuggling a
// second setting with "+" and "=", keys outside the container's
// namespaces, and namespaced keys without their namespace. create refuses
// each with an error naming the key, leaves no container, and host sysctls
// keep their values.
func TestSysctlRefused(t *testing.T) {
	before := corePattern(t)
	without := func(typ specs.LinuxNamespaceType) func(*specs.Spec) {
		return func(s *specs.Spec) {
			var keep []specs.LinuxNamespace
			for _, ns := range s.Linux.Namespaces {
				if ns.Type != typ {
					keep = append(keep, ns)
				}
			}
			s.Linux.Namespaces = keep
		}
	}
	cases := []struct {
		key, value string
		mutate     func(*specs.Spec)
	}{
		{"kernel.shm_rmid_forced", "1+kernel.core_pattern=|/esc-pwned", nil},
		{"kernel.shm_rmid_forced", "1\nkernel.core_pattern=|/esc-pwned", nil},
		{"net.ipv4.ip_forward", "1+kernel.core_pattern=|/esc-pwned", nil},
		{"kernel.core_pattern", "|/esc-pwned", nil},
		{"kernel.sysrq", "1", nil},
		{"vm.overcommit_memory", "1", nil},
		{"vm.swappiness", "0", nil},
		{"fs.file-max", "100", nil},
		{"net.ipv4.ip_forward", "1", without(specs.NetworkNamespace)},
		{"kernel.shm_rmid_forced", "1", without(specs.IPCNamespace)},
		{"kernel.shm_rmid_forced/../core_pattern", "x", nil},
		{"kernel/../kernel/core_pattern", "x", nil},
	}
	for i, c := range cases {
		e := newEnv(t, []string{"true"}, func(s *specs.Spec) {
			if c.mutate != nil {
				c.mutate(s)
			}
			s.Linux.Sysctl = map[string]string{c.key: c.value}
		})
		id := "esc-sysctl-" + strconv.Itoa(i)
		out, err := e.runtime("create", "--bundle", e.bundle, id)
		if err == nil {
			t.Errorf("sysctl %q=%q: accepted", c.key, c.value)
			continue
		}
		if !strings.Contains(out, "linux.sysctl") || !strings.Contains(out, c.key) {
			t.Errorf("sysctl %q=%q: error does not name the field: %s", c.key, c.value, out)
		}
		if list, _ := e.runtime("list", "-q"); strings.TrimSpace(list) != "" {
			t.Errorf("sysctl %q: container left behind: %q", c.key, list)
		}
	}
	if after := corePattern(t); after != before {
		t.Fatalf("host core_pattern changed: %q -> %q", before, after)
	}
	// A namespaced key with its namespace works, in the container only.
	host, _ := os.ReadFile("/proc/sys/net/ipv4/ip_forward")
	e := newEnv(t, []string{"cat", "/proc/sys/net/ipv4/ip_forward"}, func(s *specs.Spec) {
		s.Linux.Sysctl = map[string]string{"net.ipv4.ip_forward": "1"}
	})
	if out := e.mustRun("esc-sysctl-ok"); strings.TrimSpace(out) != "1" {
		t.Errorf("net.ipv4.ip_forward in the container: %q, want 1", out)
	}
	if now, _ := os.ReadFile("/proc/sys/net/ipv4/ip_forward"); string(now) != string(host) {
		t.Errorf("host net.ipv4.ip_forward changed: %q -> %q", host, now)
	}
}

// TestSensitiveWrites: with the default masked and read-only paths, writes
// to /proc/sysrq-trigger, core_pattern, /proc/kcore, /sys/firmware, sysfs
// and cgroup files fail, the cgroup mount shows the container's own cgroup
// only, and the files absent on this kernel (kcore, sysrq-trigger) are
// absent or masked, never writable.
func TestSensitiveWrites(t *testing.T) {
	before := corePattern(t)
	script := `
for f in /proc/sysrq-trigger /proc/sys/kernel/core_pattern /proc/kcore /proc/sys/vm/drop_caches \
	/sys/kernel/uevent_helper /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/memory/memory.limit_in_bytes \
	/sys/fs/cgroup/unified/cgroup.procs /sys/firmware/esc; do
	echo "$f $(/bin/esc write $f 1)"
done
echo "mkdir-cgroup $(mkdir /sys/fs/cgroup/pids/esc 2>/dev/null && echo ok || echo denied)"
echo "touch-firmware $(touch /sys/firmware/esc 2>/dev/null && echo ok || echo denied)"
echo "firmware-entries $(ls -A /sys/firmware | wc -l)"
echo "cgroup-procs $(cat /sys/fs/cgroup/pids/cgroup.procs | tr '\n' ,)"
`
	e := newEnv(t, sh(script), func(s *specs.Spec) {
		s.Mounts = append(s.Mounts, cgroupMount())
	})
	out := e.mustRun("esc-writes")
	t.Logf("results:\n%s", out)
	res := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if k, v, ok := strings.Cut(l, " "); ok {
			res[k] = v
		}
	}
	for k, v := range res {
		switch k {
		case "firmware-entries":
			if v != "0" {
				t.Errorf("/sys/firmware is not masked: %s entries", v)
			}
		case "cgroup-procs":
			// The container's own cgroup: its processes only (pid 1 and
			// the shell's children), not the host's.
			for _, p := range strings.Split(strings.Trim(v, ","), ",") {
				if n, err := strconv.Atoi(p); err != nil || n > 100 {
					t.Errorf("cgroup.procs of the mounted cgroup lists a foreign pid %q: %s", p, v)
				}
			}
		case "/proc/kcore", "/proc/sysrq-trigger":
			// Absent on this kernel: must stay absent (ENOENT), or be masked
			// by a read-only path (EROFS).
			if v != "ENOENT" && v != "EROFS" && v != "EACCES" {
				t.Errorf("write %s: %s", k, v)
			}
		default:
			if v == "ok" {
				t.Errorf("write %s: succeeded", k)
			}
		}
	}
	if len(res) < 13 {
		t.Errorf("script did not report every attack: %q", out)
	}
	if after := corePattern(t); after != before {
		t.Fatalf("host core_pattern changed: %q -> %q", before, after)
	}
}
