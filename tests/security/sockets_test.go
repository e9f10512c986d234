package security

import (
	"bufio"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// socketInodes returns the inodes of the sockets pid holds.
func socketInodes(t *testing.T, pid int) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for _, target := range procFds(t, pid) {
		if ino, ok := strings.CutPrefix(target, "socket:["); ok {
			out[strings.TrimSuffix(ino, "]")] = true
		}
	}
	return out
}

// unixSockets maps inode -> path ("" unnamed, "@..." abstract) from a
// /proc/.../net/unix table.
func unixSockets(t *testing.T, table string) map[string]string {
	t.Helper()
	f, err := os.Open(table)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]string{}
	s := bufio.NewScanner(f)
	s.Scan() // header
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) < 7 {
			continue
		}
		path := ""
		if len(fields) > 7 {
			path = fields[7]
		}
		out[fields[6]] = path
	}
	return out
}

// checkSockets fails for any abstract socket pid holds, and for any path
// socket whose file is not mode 0600; it returns the paths seen.
func checkSockets(t *testing.T, what string, pid int) []string {
	t.Helper()
	held := socketInodes(t, pid)
	var paths []string
	for _, table := range []string{"/proc/self/net/unix", "/proc/" + strconv.Itoa(pid) + "/net/unix"} {
		for ino, path := range unixSockets(t, table) {
			if !held[ino] || path == "" {
				continue
			}
			if strings.HasPrefix(path, "@") {
				t.Errorf("%s (pid %d) holds an abstract unix socket %s: any process in its network namespace can connect", what, pid, path)
				continue
			}
			paths = append(paths, path)
		}
	}
	return paths
}

// TestControlSockets: while a container is created and not started, and
// while an exec runs, neither the runtime nor the init holds an abstract
// unix socket (reachable from any process in the network namespace, the
// host's for a host-network container); exec.sock is a 0600 socket in a
// 0700 state directory.
func TestControlSockets(t *testing.T) {
	e := newEnv(t, []string{"sleep", "100"}, nil)
	const id = "esc-sock"
	e.mustRuntime("create", "--bundle", e.bundle, id)
	initPid := e.pid(id)
	paths := checkSockets(t, "waiting init", initPid)
	dir := filepath.Join(e.root, id)
	sock := filepath.Join(dir, "exec.sock")
	var st unix.Stat_t
	if err := unix.Stat(sock, &st); err != nil {
		t.Fatalf("exec socket: %v", err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFSOCK || st.Mode&0o777 != 0o600 {
		t.Errorf("exec.sock mode %#o, want a 0600 socket", st.Mode)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("state directory %s mode %v (%v), want 0700", dir, fi.Mode(), err)
	}
	// The scan sees the init's listening exec socket, or it proves nothing.
	found := false
	for _, p := range paths {
		found = found || p == sock
		if fi, err := os.Stat(p); err == nil && fi.Mode().Perm() != 0o600 {
			t.Errorf("path socket %s of the init has mode %v", p, fi.Mode().Perm())
		}
	}
	if !found {
		t.Errorf("the init's sockets %v do not include %s: the scan is blind", paths, sock)
	}
	e.mustRuntime("start", id)

	// A foreground exec: the runtime process waits for its child.
	cmd := e.command("exec", id, "sleep", "2")
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	time.Sleep(500 * time.Millisecond)
	checkSockets(t, "cove-runc exec", cmd.Process.Pid)
}
