package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestNamespacesNew(t *testing.T) {
	e := newEnv(t, []string{"sleep", "1000"}, func(s *specs.Spec) {
		setNamespace(s, specs.LinuxNamespace{Type: specs.TimeNamespace})
		s.Linux.TimeOffsets = map[string]specs.LinuxTimeOffset{"monotonic": {Secs: 86400 * 365}}
	})
	e.mustRuntime("run", "-d", "--bundle", e.bundle, "c1")
	pid := strconv.Itoa(int(e.state("c1")["pid"].(float64)))
	for _, typ := range []string{"pid", "mnt", "net", "uts", "ipc", "cgroup", "time"} {
		if nsInode(t, pid, typ) == nsInode(t, "self", typ) {
			t.Errorf("%s namespace is the host's", typ)
		}
	}
	if nsInode(t, pid, "user") != nsInode(t, "self", "user") {
		t.Error("user namespace created though not asked for")
	}
	offs, _ := os.ReadFile("/proc/" + pid + "/timens_offsets")
	if f := strings.Fields(string(offs)); len(f) < 2 || f[0] != "monotonic" || f[1] != "31536000" {
		t.Errorf("timens_offsets:\n%s", offs)
	}
}

func TestNamespacesJoined(t *testing.T) {
	a := newEnv(t, []string{"sleep", "1000"}, nil)
	a.mustRuntime("run", "-d", "--bundle", a.bundle, "a")
	apid := strconv.Itoa(int(a.state("a")["pid"].(float64)))
	b := newEnv(t, []string{"sleep", "1000"}, func(s *specs.Spec) {
		for _, typ := range []specs.LinuxNamespaceType{specs.NetworkNamespace, specs.IPCNamespace, specs.UTSNamespace, specs.PIDNamespace} {
			setNamespace(s, specs.LinuxNamespace{Type: typ, Path: "/proc/" + apid + "/ns/" + nsFile(typ)})
		}
		s.Hostname = ""
	})
	b.mustRuntime("run", "-d", "--bundle", b.bundle, "b")
	bpid := strconv.Itoa(int(b.state("b")["pid"].(float64)))
	for _, typ := range []string{"net", "ipc", "uts", "pid"} {
		if nsInode(t, bpid, typ) != nsInode(t, apid, typ) {
			t.Errorf("%s namespace not joined", typ)
		}
	}
	if nsInode(t, bpid, "mnt") == nsInode(t, apid, "mnt") {
		t.Error("mount namespace shared though not asked for")
	}
	// Joined the pid namespace: b's init is not pid 1 there.
	status, _ := os.ReadFile("/proc/" + bpid + "/status")
	if strings.Contains(string(status), "\t1\n") && strings.Contains(string(status), "NSpid:\t"+bpid+"\t1\n") {
		t.Error("joined pid namespace but init is pid 1")
	}
}

func nsFile(t specs.LinuxNamespaceType) string {
	switch t {
	case specs.NetworkNamespace:
		return "net"
	case specs.MountNamespace:
		return "mnt"
	}
	return string(t)
}

func TestUserNamespaceMappings(t *testing.T) {
	e := newEnv(t, sh("cat /proc/self/uid_map /proc/self/gid_map; id -u; stat -c %u /proc/1/root/bin"), func(s *specs.Spec) {
		setNamespace(s, specs.LinuxNamespace{Type: specs.UserNamespace})
		s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 0, Size: 65536}}
		s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 0, Size: 65536}}
	})
	out := e.mustRun("c1")
	f := strings.Fields(out)
	if len(f) < 7 || f[0] != "0" || f[1] != "0" || f[2] != "65536" || f[6] != "0" {
		t.Fatalf("maps and id:\n%s", out)
	}

	// A shifted mapping: root in the container is 100000 on the host.
	// With oomScoreAdj and a net sysctl: both written where the container
	// root (not host root) may not reach its own /proc files.
	adj := 300
	e2 := newEnv(t, sh("cat /proc/self/oom_score_adj /proc/sys/net/ipv4/ip_forward > /tmp/out; exec sleep 1000"), func(s *specs.Spec) {
		setNamespace(s, specs.LinuxNamespace{Type: specs.UserNamespace})
		s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
		s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
		s.Process.OOMScoreAdj = &adj
		s.Linux.Sysctl = map[string]string{"net.ipv4.ip_forward": "1"}
	})
	chownTree(t, filepath.Join(e2.bundle, "rootfs"), 100000)
	// Container root is host uid 100000: it must be able to reach its root.
	for d := e2.bundle; d != "/" && d != os.TempDir(); d = filepath.Dir(d) {
		os.Chmod(d, 0o755)
	}
	e2.mustRuntime("run", "-d", "--bundle", e2.bundle, "c2")
	pid := strconv.Itoa(int(e2.state("c2")["pid"].(float64)))
	status, _ := os.ReadFile("/proc/" + pid + "/status")
	if !strings.Contains(string(status), "Uid:\t100000\t100000\t100000\t100000") {
		t.Errorf("host view of container root uid:\n%s", status)
	}
	if nsInode(t, pid, "user") == nsInode(t, "self", "user") {
		t.Error("no new user namespace")
	}
	var got []byte
	for i := 0; i < 200 && len(got) == 0; i++ {
		got, _ = os.ReadFile(filepath.Join(e2.bundle, "rootfs/tmp/out"))
		time.Sleep(10 * time.Millisecond)
	}
	if string(got) != "300\n1\n" {
		t.Errorf("oom_score_adj and sysctl in a user namespace: %q", got)
	}
}

func chownTree(t *testing.T, dir string, id int) {
	t.Helper()
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil {
			os.Lchown(p, id, id)
		}
		return nil
	})
}

func TestHostnameDomainnameSysctl(t *testing.T) {
	e := newEnv(t, sh("hostname; cat /proc/sys/kernel/domainname /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmax"), func(s *specs.Spec) {
		s.Hostname = "box1"
		s.Domainname = "example.test"
		s.Linux.Sysctl = map[string]string{"net.ipv4.ip_forward": "1", "kernel.shmmax": "123456789"}
	})
	out := e.mustRun("c1")
	if out != "box1\nexample.test\n1\n123456789\n" {
		t.Fatalf("got %q", out)
	}
	host, _ := os.ReadFile("/proc/sys/kernel/shmmax")
	if strings.TrimSpace(string(host)) == "123456789" {
		t.Error("sysctl leaked to the host")
	}
}

func TestProcessSettings(t *testing.T) {
	umask := uint32(0o027)
	e := newEnv(t, sh(`id; pwd; umask; ulimit -n; ulimit -Hn; echo "FOO=$FOO"`), func(s *specs.Spec) {
		s.Process.User = specs.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{5, 65534}, Umask: &umask}
		s.Process.Cwd = "/tmp"
		s.Process.Env = append(s.Process.Env, "FOO=bar baz")
		s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 512, Hard: 1024}}
	})
	out := e.mustRun("c1")
	want := "uid=1000(user) gid=1000(user) groups=5,65534(nogroup)\n/tmp\n0027\n512\n1024\nFOO=bar baz\n"
	if out != want {
		t.Fatalf("got\n%s\nwant\n%s", out, want)
	}
}

func TestOOMScoreAdj(t *testing.T) {
	adj := 500
	e := newEnv(t, sh("cat /proc/self/oom_score_adj"), func(s *specs.Spec) { s.Process.OOMScoreAdj = &adj })
	if out := e.mustRun("c1"); out != "500\n" {
		t.Fatalf("oom_score_adj %q", out)
	}
}

// capLine returns the hex value of a Cap* line of /proc/<pid>/status.
func capLine(status, key string) string {
	for _, l := range strings.Split(status, "\n") {
		if v, ok := strings.CutPrefix(l, key+":\t"); ok {
			return v
		}
	}
	return ""
}

func TestCapabilitiesAndNoNewPrivs(t *testing.T) {
	e := newEnv(t, sh("cat /proc/self/status"), func(s *specs.Spec) {
		s.Process.Capabilities = &specs.LinuxCapabilities{
			Bounding:    []string{"CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"},
			Effective:   []string{"CAP_CHOWN", "CAP_KILL"},
			Permitted:   []string{"CAP_CHOWN", "CAP_KILL"},
			Inheritable: []string{"CAP_KILL"},
			Ambient:     []string{"CAP_KILL"},
		}
		s.Process.NoNewPrivileges = true
	})
	st := e.mustRun("c1")
	// CHOWN=0, KILL=5, NET_BIND_SERVICE=10.
	for key, want := range map[string]string{
		"CapBnd": fmt.Sprintf("%016x", 1<<0|1<<5|1<<10),
		"CapEff": fmt.Sprintf("%016x", 1<<0|1<<5),
		"CapPrm": fmt.Sprintf("%016x", 1<<0|1<<5),
		"CapInh": fmt.Sprintf("%016x", 1<<5),
		"CapAmb": fmt.Sprintf("%016x", 1<<5),
	} {
		if got := capLine(st, key); got != want {
			t.Errorf("%s = %s, want %s", key, got, want)
		}
	}
	if !strings.Contains(st, "NoNewPrivs:\t1") {
		t.Error("NoNewPrivs not set")
	}

	// Defaults: inheritable and ambient empty (CVE-2022-29162), no NNP asked.
	e2 := newEnv(t, sh("cat /proc/self/status"), func(s *specs.Spec) { s.Process.NoNewPrivileges = false })
	st = e2.mustRun("c2")
	if capLine(st, "CapInh") != "0000000000000000" || capLine(st, "CapAmb") != "0000000000000000" {
		t.Errorf("default inheritable/ambient not empty:\n%s", st)
	}
	if !strings.Contains(st, "NoNewPrivs:\t0") {
		t.Error("NoNewPrivs set though not asked")
	}
	// Non-root user keeps only ambient-raised capabilities.
	e3 := newEnv(t, sh("cat /proc/self/status"), func(s *specs.Spec) {
		s.Process.User = specs.User{UID: 1000, GID: 1000}
		s.Process.Capabilities.Ambient = []string{"CAP_NET_BIND_SERVICE"}
		s.Process.Capabilities.Inheritable = []string{"CAP_NET_BIND_SERVICE"}
	})
	st = e3.mustRun("c3")
	if got := capLine(st, "CapEff"); got != fmt.Sprintf("%016x", 1<<10) {
		t.Errorf("uid 1000 with ambient NET_BIND_SERVICE: CapEff %s", got)
	}
}
