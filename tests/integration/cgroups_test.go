package integration

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func ptr[T any](v T) *T { return &v }

func readTrim(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func TestCgroupLimits(t *testing.T) {
	cgPath := "/cove-it-" + strconv.Itoa(os.Getpid()) + "/limits"
	// Registered before newEnv: cleanups run last-in-first-out, so the
	// parent goes after the container (and its cgroup) is deleted.
	t.Cleanup(func() {
		for _, c := range []string{"memory", "cpu", "pids", "unified", "cpuset", "cpuacct", "devices", "freezer", "blkio", "systemd"} {
			os.Remove(filepath.Join(cgroupMount(c), filepath.Dir(cgPath)))
		}
	})
	e := newEnv(t, []string{"sleep", "1000"}, func(s *specs.Spec) {
		s.Linux.CgroupsPath = cgPath
		s.Linux.Resources = &specs.LinuxResources{
			Memory: &specs.LinuxMemory{Limit: ptr(int64(64 << 20))},
			CPU:    &specs.LinuxCPU{Quota: ptr(int64(50000)), Period: ptr(uint64(100000)), Shares: ptr(uint64(512))},
			Pids:   &specs.LinuxPids{Limit: ptr(int64(42))},
		}
	})
	e.mustRuntime("run", "-d", "--bundle", e.bundle, "c1")
	pid := int(e.state("c1")["pid"].(float64))
	v2 := cgroupMount("memory") == "/sys/fs/cgroup"
	mem := containerCgroup(t, pid, "memory")
	if !strings.HasSuffix(mem, cgPath) {
		t.Errorf("memory cgroup %s, want suffix %s", mem, cgPath)
	}
	if v2 {
		if got := readTrim(t, filepath.Join(mem, "memory.max")); got != strconv.Itoa(64<<20) {
			t.Errorf("memory.max %s", got)
		}
		if got := readTrim(t, filepath.Join(mem, "cpu.max")); got != "50000 100000" {
			t.Errorf("cpu.max %s", got)
		}
		if got := readTrim(t, filepath.Join(mem, "pids.max")); got != "42" {
			t.Errorf("pids.max %s", got)
		}
	} else {
		if got := readTrim(t, filepath.Join(mem, "memory.limit_in_bytes")); got != strconv.Itoa(64<<20) {
			t.Errorf("memory.limit_in_bytes %s", got)
		}
		cpu := containerCgroup(t, pid, "cpu")
		if got := readTrim(t, filepath.Join(cpu, "cpu.cfs_quota_us")); got != "50000" {
			t.Errorf("cpu.cfs_quota_us %s", got)
		}
		if got := readTrim(t, filepath.Join(cpu, "cpu.shares")); got != "512" {
			t.Errorf("cpu.shares %s", got)
		}
		if got := readTrim(t, filepath.Join(containerCgroup(t, pid, "pids"), "pids.max")); got != "42" {
			t.Errorf("pids.max %s", got)
		}
		// Hybrid host: the container also has a cgroup2 directory.
		if u := containerCgroup(t, pid, "unified"); !strings.HasSuffix(u, cgPath) {
			t.Errorf("unified cgroup %s", u)
		}
	}
	// The init sees its own cgroup as the root (cgroup namespace).
	cg, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
	if !strings.Contains(string(cg), cgPath) {
		t.Errorf("/proc/pid/cgroup: %s", cg)
	}
	e.mustRuntime("delete", "--force", "c1")
	if _, err := os.Stat(mem); !os.IsNotExist(err) {
		t.Errorf("cgroup %s left after delete", mem)
	}
}

func TestCgroupPidsLimitEnforced(t *testing.T) {
	e := newEnv(t, sh(`for i in 1 2 3 4 5 6 7 8 9 10; do sleep 100 & done 2>&1 | head -1; echo done`), func(s *specs.Spec) {
		s.Linux.Resources = &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: ptr(int64(5))}}
	})
	out, _, _ := e.run("c1")
	if !strings.Contains(out, "done") {
		t.Fatalf("script did not finish: %q", out)
	}
	if !strings.Contains(strings.ToLower(out), "resource temporarily unavailable") && !strings.Contains(out, "can't fork") {
		t.Errorf("fork past pids.max=5 was not refused: %q", out)
	}
}

func TestCgroupMemoryOOM(t *testing.T) {
	// 64 MiB in a tmpfs charged to a 16 MiB cgroup: the kernel OOM-kills.
	e := newEnv(t, sh(`dd if=/dev/zero of=/dev/shm/fill bs=1M count=64 2>/dev/null; echo "dd=$?"`), func(s *specs.Spec) {
		s.Linux.Resources = &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr(int64(16 << 20)), Swap: ptr(int64(16 << 20))}}
		for i := range s.Mounts {
			if s.Mounts[i].Destination == "/dev/shm" {
				s.Mounts[i].Options = append(s.Mounts[i].Options, "size=128m")
			}
		}
	})
	out := e.mustRun("c1")
	if out != "dd=137\n" {
		t.Fatalf("dd writing 64 MiB under a 16 MiB limit: %q, want it SIGKILLed (dd=137)", out)
	}
}

func TestCgroupDevices(t *testing.T) {
	// Deny everything: the default devices and the spec's own nodes stay
	// usable, a host device bind-mounted in is refused.
	mode := os.FileMode(0o666)
	e := newEnv(t, sh(`head -c 1 /dev/zero | wc -c; head -c 1 /dev/mine | wc -c; head -c 1 /hostkmsg 2>&1 | grep -c "not permitted"`), func(s *specs.Spec) {
		s.Linux.Devices = append(s.Linux.Devices, specs.LinuxDevice{Path: "/dev/mine", Type: "c", Major: 1, Minor: 5, FileMode: &mode})
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/hostkmsg", Type: "bind", Source: "/dev/kmsg", Options: []string{"bind"}})
		s.Linux.Resources = &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}}}
	})
	out := strings.Fields(e.mustRun("c1"))
	if strings.Join(out, " ") != "1 1 1" {
		t.Errorf("/dev/zero, /dev/mine readable and /dev/kmsg denied: got %v", out)
	}
}
