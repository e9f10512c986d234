package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// execPid runs a detached exec of sleep and returns its host pid.
func execPid(t *testing.T, e *env, id string, extra ...string) string {
	t.Helper()
	pidFile := filepath.Join(t.TempDir(), "exec.pid")
	args := append([]string{"exec", "-d", "--pid-file", pidFile}, extra...)
	e.mustRuntime(append(args, id, "sleep", "1000")...)
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func TestExecJoinsNamespacesAndCgroup(t *testing.T) {
	for _, userns := range []bool{false, true} {
		e := newEnv(t, []string{"sleep", "1000"}, func(s *specs.Spec) {
			if userns {
				setNamespace(s, specs.LinuxNamespace{Type: specs.UserNamespace})
				s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 0, Size: 65536}}
				s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 0, Size: 65536}}
			}
			setNamespace(s, specs.LinuxNamespace{Type: specs.TimeNamespace})
		})
		e.mustRuntime("run", "-d", "--bundle", e.bundle, "c1")
		initPid := strconv.Itoa(int(e.state("c1")["pid"].(float64)))
		pid := execPid(t, e, "c1")
		types := []string{"pid", "mnt", "net", "uts", "ipc", "cgroup", "time"}
		if userns {
			types = append(types, "user")
		}
		for _, typ := range types {
			if nsInode(t, pid, typ) != nsInode(t, initPid, typ) {
				t.Errorf("userns=%v: exec process not in the container's %s namespace", userns, typ)
			}
		}
		a, _ := os.ReadFile("/proc/" + initPid + "/cgroup")
		b, _ := os.ReadFile("/proc/" + pid + "/cgroup")
		if string(a) != string(b) {
			t.Errorf("userns=%v: exec cgroups differ:\n%s\nvs init\n%s", userns, b, a)
		}
		status, _ := os.ReadFile("/proc/" + pid + "/status")
		if !strings.Contains(string(status), "NoNewPrivs:\t1") {
			t.Errorf("userns=%v: exec lost the container's noNewPrivileges", userns)
		}
	}
}

func TestExecProcess(t *testing.T) {
	e := newEnv(t, []string{"sleep", "1000"}, nil)
	e.mustRuntime("run", "-d", "--bundle", e.bundle, "c1")
	cmd := exec.Command(runtimeBin, "--root", e.root, "exec", "-e", "FOO=bar", "--cwd", "/tmp", "-u", "1000:1000", "-g", "5",
		"c1", "sh", "-c", `echo "$FOO $(pwd) $(id -u):$(id -g) $(id -G)"; ls /proc/self/fd; exit 7`)
	// A host directory leaked to cove-runc without CLOEXEC as fd 3: it
	// must not reach the container (CVE-2024-21626).
	dir, err := os.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer dir.Close()
	cmd.ExtraFiles = []*os.File{dir}
	out, err := cmd.Output()
	if exitCode(err) != 7 {
		t.Fatalf("exit %v, want 7: %s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if lines[0] != "bar /tmp 1000:1000 1000 5" {
		t.Errorf("process settings: %q", lines[0])
	}
	// ls opens one directory fd of its own (3).
	if fds := strings.Join(lines[1:], " "); fds != "0 1 2 3" {
		t.Errorf("fds in exec'd process: %q", fds)
	}
}

func TestExecRefused(t *testing.T) {
	e := newEnv(t, []string{"sleep", "1000"}, nil)
	e.mustRuntime("create", "--bundle", e.bundle, "c1")
	if out, err := e.runtime("exec", "c1", "true"); err == nil || !strings.Contains(out, "created") {
		t.Errorf("exec into a created container: %v %q", err, out)
	}
	e.mustRuntime("start", "c1")
	e.mustRuntime("kill", "c1", "KILL")
	waitStatus(t, e, "c1", "stopped")
	if out, err := e.runtime("exec", "c1", "true"); err == nil || !strings.Contains(out, "stopped") {
		t.Errorf("exec into a stopped container: %v %q", err, out)
	}
	if out, err := e.runtime("exec", "nosuch", "true"); err == nil || !strings.Contains(out, "does not exist") {
		t.Errorf("exec into a missing container: %v %q", err, out)
	}
	e2 := newEnv(t, []string{"sleep", "1000"}, nil)
	e2.mustRuntime("run", "-d", "--bundle", e2.bundle, "c2")
	if out, err := e2.runtime("exec", "c2", "/no/such"); err == nil || !strings.Contains(out, "/no/such") {
		t.Errorf("exec of a missing binary: %v %q", err, out)
	}
	// The container is unaffected.
	time.Sleep(50 * time.Millisecond)
	if st := e2.state("c2"); st["status"] != "running" {
		t.Errorf("container after failed exec: %v", st)
	}
}

// exec into a container whose network namespace was joined by path (as
// CNI and engines set it up) lands in that namespace.
func TestExecJoinedNetns(t *testing.T) {
	needRoot(t)
	holder := exec.Command("/bin/busybox", "sleep", "1000")
	holder.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET}
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { holder.Process.Kill(); holder.Wait() }()
	hostPid := strconv.Itoa(holder.Process.Pid)
	want := nsInode(t, hostPid, "net")
	if want == nsInode(t, "self", "net") {
		t.Fatal("the holder's network namespace is the host's")
	}
	e := newEnv(t, []string{"sleep", "1000"}, func(s *specs.Spec) {
		setNamespace(s, specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: "/proc/" + hostPid + "/ns/net"})
	})
	e.mustRuntime("run", "-d", "--bundle", e.bundle, "cx-netns")
	initPid := strconv.Itoa(int(e.state("cx-netns")["pid"].(float64)))
	if got := nsInode(t, initPid, "net"); got != want {
		t.Errorf("init in net namespace %s, want the joined %s", got, want)
	}
	if got := nsInode(t, execPid(t, e, "cx-netns"), "net"); got != want {
		t.Errorf("exec process in net namespace %s, want the joined %s", got, want)
	}
}
