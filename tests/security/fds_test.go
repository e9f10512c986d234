package security

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"cove/tests/internal/testenv"
)

// leakDir opens a host directory without O_CLOEXEC, as a careless caller
// of the runtime would, so that every cove-runc the test starts inherits
// it. It returns the fd and the directory.
func leakDir(t *testing.T) (int, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "host-secret")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "secret"), []byte("host"), 0o600); err != nil {
		t.Fatal(err)
	}
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd, dir
}

// procFds returns fd number -> link target of pid's open fds.
func procFds(t *testing.T, pid int) map[int]string {
	t.Helper()
	base := "/proc/" + strconv.Itoa(pid) + "/fd"
	ents, err := os.ReadDir(base)
	if err != nil {
		t.Fatalf("list fds of %d: %v", pid, err)
	}
	out := map[int]string{}
	for _, e := range ents {
		n, _ := strconv.Atoi(e.Name())
		out[n], _ = os.Readlink(base + "/" + e.Name())
	}
	return out
}

// checkFds fails the test for any fd of pid beyond stdio, and for any fd
// that is the leaked directory.
func checkFds(t *testing.T, what string, pid int, leaked string, allowed func(n int, target string) bool) {
	t.Helper()
	for n, target := range procFds(t, pid) {
		if strings.HasPrefix(target, leaked) {
			t.Errorf("%s (pid %d): fd %d is the leaked host directory %s", what, pid, n, target)
		}
		if n > 2 && !allowed(n, target) {
			t.Errorf("%s (pid %d): unexpected fd %d -> %s", what, pid, n, target)
		}
	}
}

// TestLeakedFds enumerates the fds of the waiting init, the container's
// process and an exec'd process, with a host directory fd leaked into
// cove-runc by its caller: only stdio may reach the container's processes.
func TestLeakedFds(t *testing.T) {
	_, leaked := leakDir(t)
	e := newEnv(t, []string{"sleep", "100"}, nil)
	const id = "esc-fds"
	e.mustRuntime("create", "--bundle", e.bundle, id)
	initPid := e.pid(id)
	// The waiting init holds the exec socket and Go's own epoll and pipe
	// fds, nothing from the host's file system.
	checkFds(t, "waiting init", initPid, leaked, func(n int, target string) bool {
		return strings.HasPrefix(target, "socket:") || strings.HasPrefix(target, "anon_inode:") || strings.HasPrefix(target, "pipe:")
	})
	e.mustRuntime("start", id)
	none := func(int, string) bool { return false }
	if !waitFor(5e9, func() bool { return readComm(initPid) == "sleep" }) {
		t.Fatalf("container process did not start: comm %q", readComm(initPid))
	}
	checkFds(t, "container process", initPid, leaked, none)

	pidFile := filepath.Join(e.dir, "exec.pid")
	e.mustRuntime("exec", "-d", "--pid-file", pidFile, id, "sleep", "100")
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	execPid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if !waitFor(5e9, func() bool { return readComm(execPid) == "sleep" }) {
		t.Fatalf("exec'd process did not start: comm %q", readComm(execPid))
	}
	checkFds(t, "exec'd process", execPid, leaked, none)
}

func readComm(pid int) string {
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
	return strings.TrimSpace(string(b))
}

// TestCwdProcSelfFd is CVE-2024-21626: process.cwd /proc/self/fd/N, for
// every N from 3 to 20, on run and on exec, with a host directory fd
// leaked into cove-runc. Each start must fail, or the process's cwd must be
// inside the container (getcwd gives an absolute path, not
// "(unreachable)").
func TestCwdProcSelfFd(t *testing.T) {
	fd, leaked := leakDir(t)
	check := func(what, out string, code int, errOut string) {
		t.Helper()
		out = strings.TrimSpace(out)
		if code != 0 {
			if !strings.Contains(errOut, "cwd") {
				t.Errorf("%s: refused without naming the cwd: %s", what, errOut)
			}
			return
		}
		if !strings.HasPrefix(out, "/") || strings.HasPrefix(out, leaked) {
			t.Errorf("%s: process cwd is outside the container: %q", what, out)
		}
	}
	e := newEnv(t, []string{"/bin/esc", "cwd"}, nil)
	for n := 3; n <= 20; n++ {
		cwd := "/proc/self/fd/" + strconv.Itoa(n)
		e.spec.Process.Cwd = cwd
		e.writeSpec()
		out, errOut, code := e.run("esc-cwd-run")
		check("run cwd="+cwd, out, code, errOut)
	}

	// A host directory handed over on purpose (--preserve-fds) is the
	// container's fd 3: a cwd through it must still be refused.
	e.spec.Process.Cwd = "/proc/self/fd/3"
	e.writeSpec()
	dup, err := unix.Dup(fd)
	if err != nil {
		t.Fatal(err)
	}
	pre := os.NewFile(uintptr(dup), leaked)
	defer pre.Close()
	cmd := e.command("run", "--preserve-fds", "1", "--bundle", e.bundle, "esc-cwd-pre")
	cmd.ExtraFiles = []*os.File{pre}
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := testenv.RunTimeout(cmd, 30e9); err == nil {
		t.Errorf("cwd through a preserved host directory fd: started, cwd %q", stdout.String())
	} else if !strings.Contains(stderr.String(), "outside the container") {
		t.Errorf("cwd through a preserved host directory fd: unclear error: %s", stderr.String())
	}

	e.spec.Process.Cwd = "/"
	e.spec.Process.Args = []string{"sleep", "100"}
	e.writeSpec()
	const id = "esc-cwd-exec"
	e.start(id)
	for n := 3; n <= 20; n++ {
		cwd := "/proc/self/fd/" + strconv.Itoa(n)
		cmd := e.command("exec", "--cwd", cwd, id, "/bin/esc", "cwd")
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		code := 0
		if err := testenv.RunTimeout(cmd, 30e9); err != nil {
			code = 1
		}
		check("exec cwd="+cwd, stdout.String(), code, stderr.String())
	}
}
