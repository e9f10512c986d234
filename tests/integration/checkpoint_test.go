package integration

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Checkpoint/restore tests (ids cr-*) run CRIU 4.2 through the cove-criu
// wrapper that .ci/criu.sh installs: Debian bookworm's criu 3.17 fails on
// this kernel, and 4.1 cannot dump TCP sockets on it.

// crCriu returns the path of a working CRIU (>= 4.2: $COVE_CRIU, else the
// cove-criu wrapper), or skips.
func crCriu(t *testing.T) string {
	t.Helper()
	needRoot(t)
	p := os.Getenv("COVE_CRIU")
	if p == "" {
		var err error
		if p, err = exec.LookPath("cove-criu"); err != nil {
			p = "/usr/local/sbin/cove-criu"
		}
	}
	if _, err := os.Stat(p); err != nil {
		t.Skipf("CRIU >= 4.2 (cove-criu) is not installed: run .ci/criu.sh (%v)", err)
	}
	if out, err := exec.Command(p, "check").CombinedOutput(); err != nil {
		t.Skipf("%s check fails on this host: %v\n%s", p, err, out)
	}
	return p
}

// cr runs cove-runc with --criu set to the CRIU under test.
func (e *env) cr(criu string, args ...string) (string, error) {
	return e.runtime(append([]string{"--criu", criu}, args...)...)
}

func (e *env) mustCr(criu string, args ...string) string {
	e.t.Helper()
	out, err := e.cr(criu, args...)
	if err != nil {
		e.t.Fatalf("cove-runc %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func crPid(e *env, id string) int {
	e.t.Helper()
	return int(e.state(id)["pid"].(float64))
}

func crStatus(e *env, id string) string {
	e.t.Helper()
	return e.state(id)["status"].(string)
}

// crWaitFor polls cond for up to 10 s.
func crWaitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

// crCount reads the counter a container writes to path; -1 if unreadable.
func crCount(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return -1
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return -1
	}
	return n
}

// crPong connects to port 8080 in pid's network namespace (nsenter, as
// `ip netns exec` would) and returns what the server sent.
func crPong(t *testing.T, pid int) string {
	t.Helper()
	cmd := exec.Command("nsenter", "-t", strconv.Itoa(pid), "-n", "/bin/busybox", "nc", "127.0.0.1", "8080")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("connect to port 8080 in the netns of %d: %v", pid, err)
	}
	return strings.TrimSpace(string(out))
}

// crListening reports whether pid's network namespace has a TCP listener
// on port.
func crListening(pid, port int) bool {
	for _, f := range []string{"tcp", "tcp6"} {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/net/%s", pid, f))
		for _, l := range strings.Split(string(b), "\n") {
			if x := strings.Fields(l); len(x) > 3 && strings.HasSuffix(x[1], fmt.Sprintf(":%04X", port)) && x[3] == "0A" {
				return true
			}
		}
	}
	return false
}

// crMountpoints lists the mount points (with fs types) of pid's mount
// namespace, sorted, one per line.
func crMountpoints(t *testing.T, pid int) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", pid))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		pre, post, _ := strings.Cut(l, " - ")
		if f, g := strings.Fields(pre), strings.Fields(post); len(f) > 4 && len(g) > 0 {
			out = append(out, f[4]+" "+g[0])
		}
	}
	slices.Sort(out)
	return strings.Join(out, "\n")
}

// A counter in shell memory and on disk, an open file, a listening socket
// in a private netns and a memory limit survive checkpoint and restore.
func TestCheckpointRestoreCounter(t *testing.T) {
	criu := crCriu(t)
	const limit = 256 << 20
	script := `exec 3>>/log; nc -ll -p 8080 -e echo pong & i=0; while true; do i=$((i+1)); echo $i >&3; echo $i >/count; sleep 0.05; done`
	e := newEnv(t, sh(script), func(s *specs.Spec) {
		if s.Linux.Resources == nil {
			s.Linux.Resources = &specs.LinuxResources{}
		}
		s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: ptr(int64(limit))}
	})
	id, img := "cr-count", filepath.Join(t.TempDir(), "img")
	rootfs := filepath.Join(e.bundle, "rootfs")
	count := filepath.Join(rootfs, "count")
	e.mustRuntime("run", "-d", "--bundle", e.bundle, id)
	pid := crPid(e, id)
	crWaitFor(t, "the counter and the listener", func() bool { return crCount(count) >= 10 && crListening(pid, 8080) })
	// What CNI's loopback plugin does; CRIU restores the link state.
	if out, err := exec.Command("nsenter", "-t", strconv.Itoa(pid), "-n", "ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("lo up: %v: %s", err, out)
	}
	if got := crPong(t, pid); got != "pong" {
		t.Fatalf("before checkpoint: port 8080 answered %q", got)
	}
	mounts := crMountpoints(t, pid)

	e.mustCr(criu, "checkpoint", "--image-path", img, id)
	if st := crStatus(e, id); st != "stopped" {
		t.Fatalf("after checkpoint: status %s, want stopped", st)
	}
	dumped := crCount(count)
	time.Sleep(200 * time.Millisecond)
	if c := crCount(count); c != dumped {
		t.Fatalf("counter moved from %d to %d after checkpoint: the container still runs", dumped, c)
	}
	e.mustRuntime("delete", id)

	e.mustCr(criu, "restore", "-d", "--bundle", e.bundle, "--image-path", img, id)
	if st := crStatus(e, id); st != "running" {
		t.Fatalf("after restore: status %s, want running", st)
	}
	pid2 := crPid(e, id)
	if pid2 == pid || !alive(pid2) {
		t.Fatalf("restored pid %d (old %d) is not a new live process", pid2, pid)
	}
	crWaitFor(t, "the restored counter", func() bool { return crCount(count) >= dumped+5 })
	// The shell's counter lives in memory: the log (written through the
	// restored fd 3) must go on 1, 2, ... without starting over.
	lines := readLines(filepath.Join(rootfs, "log"))
	for i, l := range lines {
		if l != strconv.Itoa(i+1) && i < len(lines)-1 {
			t.Fatalf("log line %d is %q, want %d: the counter did not continue (dumped at %d)", i+1, l, i+1, dumped)
		}
	}
	link, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/3", pid2))
	if err != nil || link != "/log" {
		t.Fatalf("restored fd 3 -> %q (%v), want /log", link, err)
	}
	var a, b unix.Stat_t
	if unix.Stat(fmt.Sprintf("/proc/%d/fd/3", pid2), &a) != nil || unix.Stat(filepath.Join(rootfs, "log"), &b) != nil || a.Ino != b.Ino {
		t.Fatalf("restored fd 3 is inode %d, the bundle's /log is %d", a.Ino, b.Ino)
	}
	crWaitFor(t, "the restored listener", func() bool { return crListening(pid2, 8080) })
	if got := crPong(t, pid2); got != "pong" {
		t.Fatalf("after restore: port 8080 answered %q", got)
	}
	for _, ns := range []string{"net", "pid", "mnt", "uts", "ipc", "cgroup"} {
		if nsInode(t, strconv.Itoa(pid2), ns) == nsInode(t, "self", ns) {
			t.Fatalf("restored container shares the host's %s namespace", ns)
		}
	}
	if got := crMountpoints(t, pid2); got != mounts {
		t.Fatalf("mount points after restore:\n%s\nbefore:\n%s", got, mounts)
	}
	// A fresh cgroup named after the container in every hierarchy (the
	// cgroup2 one too), limit re-applied.
	for _, l := range readLines(fmt.Sprintf("/proc/%d/cgroup", pid2)) {
		if !strings.HasSuffix(l, "/"+id) {
			t.Errorf("restored init's cgroup %q is not the container's", l)
		}
	}
	dir := containerCgroup(t, pid2, "memory")
	if !strings.Contains(dir, id) {
		t.Fatalf("restored init in cgroup %s, not the container's", dir)
	}
	file := "memory.limit_in_bytes"
	if cgroupMount("memory") == "/sys/fs/cgroup" {
		file = "memory.max"
	}
	if got := readTrim(t, filepath.Join(dir, file)); got != strconv.Itoa(limit) {
		t.Fatalf("%s in the restored cgroup = %s, want %d", file, got, limit)
	}

	// Managed like a started container: exec joins it, pause freezes it.
	if out := e.mustRuntime("exec", id, "cat", "/proc/1/cmdline"); !strings.Contains(out, "while true") {
		t.Fatalf("exec into the restored container: pid 1 runs %q", out)
	}
	e.mustRuntime("pause", id)
	if st := crStatus(e, id); st != "paused" {
		t.Fatalf("after pause: %s", st)
	}
	e.mustRuntime("resume", id)
	e.mustRuntime("kill", id, "KILL")
	crWaitFor(t, "the restored container to stop", func() bool { return crStatus(e, id) == "stopped" })
	e.mustRuntime("delete", id)
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("cgroup %s left after delete: %v", dir, err)
	}
}

// An established TCP connection from outside the container (the container
// joins a netns the test made) survives checkpoint and restore with
// --tcp-established.
func TestCheckpointRestoreTCPEstablished(t *testing.T) {
	criu := crCriu(t)
	ns := fmt.Sprintf("cr-tcp-%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Skipf("ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	if out, err := exec.Command("ip", "-n", ns, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("lo up: %v: %s", err, out)
	}
	e := newEnv(t, sh("exec nc -l -p 9000 -e cat"), func(s *specs.Spec) {
		setNamespace(s, specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: "/run/netns/" + ns})
	})
	id, img := "cr-tcp", filepath.Join(t.TempDir(), "img")
	e.mustRuntime("run", "-d", "--bundle", e.bundle, id)
	pid := crPid(e, id)
	crWaitFor(t, "the listener", func() bool { return crListening(pid, 9000) })

	client := exec.Command("ip", "netns", "exec", ns, "/bin/busybox", "nc", "127.0.0.1", "9000")
	in, err := client.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := client.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := client.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Process.Kill(); client.Wait() })
	lines := make(chan string, 4)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	echo := func(msg string) {
		t.Helper()
		if _, err := io.WriteString(in, msg+"\n"); err != nil {
			t.Fatalf("write %q: %v", msg, err)
		}
		select {
		case got, ok := <-lines:
			if !ok || got != msg {
				t.Fatalf("echo of %q: got %q (open %v)", msg, got, ok)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no echo of %q", msg)
		}
	}
	echo("before")

	e.mustCr(criu, "checkpoint", "--tcp-established", "--image-path", img, id)
	if st := crStatus(e, id); st != "stopped" {
		t.Fatalf("after checkpoint: status %s, want stopped", st)
	}
	e.mustRuntime("delete", id)
	e.mustCr(criu, "restore", "-d", "--tcp-established", "--bundle", e.bundle, "--image-path", img, id)
	pid2 := crPid(e, id)
	if nsInode(t, strconv.Itoa(pid2), "net") != nsInode(t, strconv.Itoa(client.Process.Pid), "net") {
		t.Fatal("restored container is not in the joined network namespace")
	}
	echo("after")
}

// --leave-running keeps the container running; its image restores into a
// second container with a new id, beside the first.
func TestCheckpointLeaveRunningRestoreNewID(t *testing.T) {
	criu := crCriu(t)
	e := newEnv(t, sh(`i=0; while true; do i=$((i+1)); echo $i >/count; sleep 0.05; done`), nil)
	id, id2, img := "cr-leave", "cr-leave-2", filepath.Join(t.TempDir(), "img")
	e.mustRuntime("run", "-d", "--bundle", e.bundle, id)
	pid := crPid(e, id)
	count := filepath.Join(e.bundle, "rootfs", "count")
	crWaitFor(t, "the counter", func() bool { return crCount(count) >= 20 })

	e.mustCr(criu, "checkpoint", "--leave-running", "--image-path", img, id)
	dumped := crCount(count)
	if st := crStatus(e, id); st != "running" || crPid(e, id) != pid {
		t.Fatalf("after --leave-running: status %s pid %d, want running pid %d", st, crPid(e, id), pid)
	}
	crWaitFor(t, "the original counter to go on", func() bool { return crCount(count) > dumped+3 })

	// The second container gets its own copy of the root.
	b2 := filepath.Join(t.TempDir(), "bundle")
	if out, err := exec.Command("cp", "-a", e.bundle, b2).CombinedOutput(); err != nil {
		t.Fatalf("copy bundle: %v: %s", err, out)
	}
	count2 := filepath.Join(b2, "rootfs", "count")
	os.WriteFile(count2, []byte("0\n"), 0o644)
	e.mustCr(criu, "restore", "-d", "--bundle", b2, "--image-path", img, id2)
	pid2 := crPid(e, id2)
	if pid2 == pid || crStatus(e, id2) != "running" || crStatus(e, id) != "running" {
		t.Fatalf("want both running with different pids: %d %s, %d %s", pid, crStatus(e, id), pid2, crStatus(e, id2))
	}
	crWaitFor(t, "the restored counter", func() bool { return crCount(count2) > 0 })
	// It continues from the checkpoint (>= 20), not from 1.
	if c := crCount(count2); c < 20 {
		t.Fatalf("restored counter at %d: it started over (checkpointed at >= 20)", c)
	}
	if a, b := containerCgroup(t, pid, "pids"), containerCgroup(t, pid2, "pids"); a == b || !strings.Contains(b, id2) {
		t.Fatalf("cgroups: original %s, restored %s", a, b)
	}
}

// A foreground restore waits for the process and returns its exit code,
// with its stdout on restore's stdout (pipes in and out, as CRIU needs).
func TestCheckpointRestoreForeground(t *testing.T) {
	criu := crCriu(t)
	e := newEnv(t, sh(`i=0; while [ $i -lt 60 ]; do i=$((i+1)); echo tick $i; sleep 0.05; done; exit 7`), nil)
	id, img := "cr-fg", filepath.Join(t.TempDir(), "img")
	ticks := func(args ...string) (*exec.Cmd, chan string) {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(runtimeBin, append([]string{"--root", e.root, "--criu", criu}, args...)...)
		cmd.Stdout = w
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		w.Close()
		ch := make(chan string, 100)
		go func() {
			defer r.Close()
			sc := bufio.NewScanner(r)
			for sc.Scan() {
				ch <- sc.Text()
			}
			close(ch)
		}()
		return cmd, ch
	}
	run, first := ticks("run", "-d", "--bundle", e.bundle, id)
	if err := run.Wait(); err != nil {
		t.Fatalf("run -d: %v", err)
	}
	for l := range first {
		if l == "tick 5" {
			break
		}
	}
	e.mustCr(criu, "checkpoint", "--image-path", img, id)
	last := 5
	for l := range first { // EOF: the checkpointed process is gone
		fmt.Sscanf(l, "tick %d", &last)
	}
	e.mustRuntime("delete", id)

	restore, second := ticks("restore", "--bundle", e.bundle, "--image-path", img, id)
	var got []string
	for l := range second {
		got = append(got, l)
	}
	err := restore.Wait()
	if code := exitCode(err); code != 7 {
		t.Fatalf("foreground restore exited %d (%v), want the container's 7", code, err)
	}
	if len(got) == 0 || got[0] != fmt.Sprintf("tick %d", last+1) || got[len(got)-1] != "tick 60" {
		t.Fatalf("restored output %q, want tick %d .. tick 60", got, last+1)
	}
	if out, err := e.runtime("state", id); err == nil {
		t.Fatalf("container left after a foreground restore: %s", out)
	}
}

// Bad input fails clearly and changes nothing.
func TestCheckpointBadInput(t *testing.T) {
	criu := crCriu(t)
	e := newEnv(t, sh(`while true; do sleep 0.1; done`), nil)
	id := "cr-bad"
	e.mustRuntime("run", "-d", "--bundle", e.bundle, id)
	pid := crPid(e, id)
	unchanged := func(what string) {
		t.Helper()
		if st, p := crStatus(e, id), crPid(e, id); st != "running" || p != pid {
			t.Fatalf("after %s: status %s pid %d, want running %d", what, st, p, pid)
		}
	}
	expectErr := func(what, want string, args ...string) {
		t.Helper()
		out, err := e.runtime(args...)
		if err == nil || !strings.Contains(out, want) {
			t.Fatalf("%s: err %v, output %q, want an error mentioning %q", what, err, out, want)
		}
	}
	dir := t.TempDir()

	expectErr("checkpoint with --criu /nonexistent", "criu binary not found",
		"--criu", "/nonexistent", "checkpoint", "--image-path", filepath.Join(dir, "x"), id)
	unchanged("checkpoint without CRIU")
	if _, err := os.Stat(filepath.Join(dir, "x")); !os.IsNotExist(err) {
		t.Fatalf("checkpoint without CRIU made its image directory: %v", err)
	}

	expectErr("--pre-dump", "CONFIG_MEM_SOFT_DIRTY",
		"--criu", criu, "checkpoint", "--pre-dump", "--image-path", filepath.Join(dir, "pre"), id)
	unchanged("--pre-dump")

	expectErr("restore from a missing image directory", "not a checkpoint image directory",
		"--criu", criu, "restore", "-d", "--bundle", e.bundle, "--image-path", filepath.Join(dir, "missing"), "cr-bad-2")
	if out, err := e.runtime("state", "cr-bad-2"); err == nil {
		t.Fatalf("failed restore left a container: %s", out)
	}

	// A real image with one file removed: CRIU fails midway; nothing of the
	// container (state, cgroup, restore root mount) may be left.
	img := filepath.Join(dir, "img")
	e.mustCr(criu, "checkpoint", "--leave-running", "--image-path", img, id)
	unchanged("checkpoint --leave-running")
	pages, _ := filepath.Glob(filepath.Join(img, "pages-*.img"))
	if len(pages) == 0 {
		t.Fatalf("no pages-*.img in %s", img)
	}
	for _, p := range pages {
		os.Remove(p)
	}
	expectErr("restore from a truncated image", "restore container",
		"--criu", criu, "restore", "-d", "--bundle", e.bundle, "--image-path", img, "cr-bad-3")
	if out, err := e.runtime("state", "cr-bad-3"); err == nil {
		t.Fatalf("failed restore left a container: %s", out)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(containerCgroup(t, pid, "pids")), "cr-bad-3")); !os.IsNotExist(err) {
		t.Fatalf("failed restore left its cgroup: %v", err)
	}
	if mi, _ := os.ReadFile("/proc/self/mountinfo"); strings.Contains(string(mi), "cr-bad-3") {
		t.Fatal("failed restore left a mount behind")
	}

	// A stopped container cannot be checkpointed, and stays as it was.
	e.mustRuntime("kill", id, "KILL")
	crWaitFor(t, "the container to stop", func() bool { return crStatus(e, id) == "stopped" })
	expectErr("checkpoint of a stopped container", "not running",
		"--criu", criu, "checkpoint", "--image-path", filepath.Join(dir, "stopped"), id)
	if st := crStatus(e, id); st != "stopped" {
		t.Fatalf("status %s after a refused checkpoint, want stopped", st)
	}
}

// crFreePort returns a TCP port on 127.0.0.1 that nothing listens on.
func crFreePort(t *testing.T) int {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	return sa.(*unix.SockaddrInet4).Port
}

// Post-copy (lazy) migration: checkpoint --lazy-pages serves memory from a
// page server, CRIU's lazy-pages daemon fetches it while the restored copy
// (a new id) already runs. fs.pipe-max-size is put back afterwards.
func TestCheckpointLazyPages(t *testing.T) {
	criu := crCriu(t)
	pipeMax := readTrim(t, "/proc/sys/fs/pipe-max-size")
	e := newEnv(t, sh(`i=0; while true; do i=$((i+1)); echo $i >/count; sleep 0.05; done`), nil)
	id, id2, img := "cr-lazy", "cr-lazy-2", filepath.Join(t.TempDir(), "img")
	os.Mkdir(img, 0o700)
	e.mustRuntime("run", "-d", "--bundle", e.bundle, id)
	count := filepath.Join(e.bundle, "rootfs", "count")
	crWaitFor(t, "the counter", func() bool { return crCount(count) >= 20 })

	port := strconv.Itoa(crFreePort(t))
	status, statusW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer status.Close()
	ck := exec.Command(runtimeBin, "--root", e.root, "--criu", criu, "checkpoint", "--lazy-pages",
		"--page-server", "127.0.0.1:"+port, "--status-fd", "3", "--image-path", img, id)
	ck.ExtraFiles = []*os.File{statusW}
	ckOut, _ := os.CreateTemp(t.TempDir(), "ck")
	ck.Stdout, ck.Stderr = ckOut, ckOut
	if err := ck.Start(); err != nil {
		t.Fatal(err)
	}
	statusW.Close()
	ckDone := make(chan error, 1)
	go func() { ckDone <- ck.Wait() }()
	t.Cleanup(func() { ck.Process.Kill() })
	// One byte once the page server listens.
	if _, err := status.Read(make([]byte, 1)); err != nil {
		b, _ := os.ReadFile(ckOut.Name())
		t.Fatalf("no ready byte on --status-fd: %v\n%s", err, b)
	}
	daemon := exec.Command(criu, "lazy-pages", "--page-server", "--address", "127.0.0.1", "--port", port,
		"-D", img, "-W", img, "-o", "lazy-pages.log")
	if err := daemon.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { daemon.Process.Kill(); daemon.Wait() })
	time.Sleep(300 * time.Millisecond) // the daemon's socket in the work dir
	e.mustCr(criu, "restore", "-d", "--lazy-pages", "--bundle", e.bundle, "--image-path", img, id2)

	select {
	case err := <-ckDone:
		if err != nil {
			b, _ := os.ReadFile(ckOut.Name())
			t.Fatalf("lazy checkpoint: %v\n%s", err, b)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("lazy checkpoint did not finish after the restore fetched its pages")
	}
	if st := crStatus(e, id); st != "stopped" {
		t.Fatalf("source container %s after the transfer, want stopped", st)
	}
	if st := crStatus(e, id2); st != "running" {
		t.Fatalf("restored container %s, want running", st)
	}
	c := crCount(count)
	if c < 20 {
		t.Fatalf("restored counter at %d: it started over", c)
	}
	crWaitFor(t, "the restored counter to go on", func() bool { return crCount(count) > c+3 })
	if got := readTrim(t, "/proc/sys/fs/pipe-max-size"); got != pipeMax {
		t.Fatalf("fs.pipe-max-size is %s after the checkpoint, was %s", got, pipeMax)
	}
}

// crRecvtty starts recvtty on a new console socket; it returns the socket
// path and a function returning what the console printed so far.
func crRecvtty(t *testing.T, bin string) (string, func() string) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "console.sock")
	out, err := os.CreateTemp(t.TempDir(), "tty")
	if err != nil {
		t.Fatal(err)
	}
	rt := exec.Command(bin, sock)
	rt.Stdout, rt.Stderr = out, out
	if err := rt.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Process.Kill(); rt.Wait() })
	crWaitFor(t, "recvtty's socket", func() bool { _, err := os.Stat(sock); return err == nil })
	return sock, func() string { b, _ := os.ReadFile(out.Name()); return string(b) }
}

// A container with a terminal: CRIU hands the restored pty master over
// (orphan-pts-master) and restore sends it to the new console socket.
func TestCheckpointRestoreTerminal(t *testing.T) {
	criu := crCriu(t)
	recvtty := os.Getenv("COVE_RECVTTY")
	if recvtty == "" {
		recvtty = filepath.Join(t.TempDir(), "recvtty")
		if out, err := exec.Command("go", "build", "-o", recvtty, "cove/internal/runtime/console/cmd/recvtty").CombinedOutput(); err != nil {
			t.Fatalf("build recvtty: %v\n%s", err, out)
		}
	}
	e := newEnv(t, sh(`i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.05; done`), func(s *specs.Spec) {
		s.Process.Terminal = true
	})
	id, img := "cr-tty", filepath.Join(t.TempDir(), "img")
	sock1, out1 := crRecvtty(t, recvtty)
	e.mustRuntime("run", "-d", "--console-socket", sock1, "--bundle", e.bundle, id)
	crWaitFor(t, "ticks on the first console", func() bool { return strings.Contains(out1(), "tick 10\r\n") })
	e.mustCr(criu, "checkpoint", "--image-path", img, id)
	last := 0
	for _, l := range strings.Split(out1(), "\r\n") {
		fmt.Sscanf(l, "tick %d", &last)
	}
	sock2, out2 := crRecvtty(t, recvtty)
	e.mustCr(criu, "restore", "-d", "--console-socket", sock2, "--bundle", e.bundle, "--image-path", img, id)
	want := fmt.Sprintf("tick %d\r\n", last+1)
	crWaitFor(t, "the restored ticks on the new console", func() bool { return strings.Contains(out2(), want) })
	if strings.Contains(out2(), "tick 1\r\n") {
		t.Fatalf("the restored counter started over: %q", out2())
	}
}
