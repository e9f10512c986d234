package integration

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestRunExitStatus(t *testing.T) {
	for _, tc := range []struct {
		script string
		code   int
		mutate func(*specs.Spec)
	}{
		{"true", 0, nil},
		{"exit 3", 3, nil},
		// pid 1 of a namespace ignores its own SIGKILL: use the host's.
		{"kill -9 $$", 128 + 9, withoutNamespace(specs.PIDNamespace)},
	} {
		e := newEnv(t, sh(tc.script), tc.mutate)
		_, stderr, code := e.run("c1")
		if code != tc.code {
			t.Errorf("%q: exit %d, want %d (stderr %q)", tc.script, code, tc.code, stderr)
		}
		// run deletes the container when its process exits.
		if out := e.mustRuntime("list", "-q"); strings.TrimSpace(out) != "" {
			t.Errorf("%q: containers left after run: %q", tc.script, out)
		}
	}
}

func TestRunStdio(t *testing.T) {
	e := newEnv(t, sh("echo out; echo err >&2"), nil)
	out, errOut, code := e.run("c1")
	if code != 0 || out != "out\n" || errOut != "err\n" {
		t.Fatalf("got stdout %q stderr %q exit %d", out, errOut, code)
	}
}

func waitStatus(t *testing.T, e *env, id, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := e.state(id)
		if st["status"] == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("container %s: status %v, want %s", id, st["status"], want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestCreateStartKillDelete(t *testing.T) {
	e := newEnv(t, sh("echo started > /tmp/marker; exec sleep 1000"), nil)
	pidFile := filepath.Join(t.TempDir(), "pid")
	e.mustRuntime("create", "--bundle", e.bundle, "--pid-file", pidFile, "c1")

	st := e.state("c1")
	if st["status"] != "created" || st["id"] != "c1" || st["ociVersion"] == "" {
		t.Fatalf("after create: %v", st)
	}
	if st["bundle"] != e.bundle || st["rootfs"] != filepath.Join(e.bundle, "rootfs") {
		t.Errorf("bundle/rootfs: %v", st)
	}
	pid := int(st["pid"].(float64))
	b, err := os.ReadFile(pidFile)
	if err != nil || strings.TrimSpace(string(b)) != strconv.Itoa(pid) {
		t.Fatalf("pid file %q (%v), state pid %d", b, err, pid)
	}
	// The process has not run yet: the marker does not exist.
	marker := filepath.Join(e.bundle, "rootfs/tmp/marker")
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("process ran before start")
	}
	if _, err := e.runtime("delete", "c1x"); err == nil {
		t.Error("delete of a missing container succeeded")
	}
	if out, err := e.runtime("create", "--bundle", e.bundle, "c1"); err == nil || !strings.Contains(out, "already exists") {
		t.Errorf("duplicate create: %v %q", err, out)
	}

	e.mustRuntime("start", "c1")
	waitStatus(t, e, "c1", "running")
	for i := 0; ; i++ {
		if b, err := os.ReadFile(marker); err == nil && string(b) == "started\n" {
			break
		}
		if i > 200 {
			t.Fatal("process did not run after start")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if out, err := e.runtime("start", "c1"); err == nil {
		t.Errorf("second start succeeded: %q", out)
	}
	if out, err := e.runtime("delete", "c1"); err == nil || !strings.Contains(out, "not stopped") {
		t.Errorf("delete of running container: %v %q", err, out)
	}
	if st := e.state("c1"); st["status"] != "running" {
		t.Fatalf("refused delete changed status: %v", st)
	}

	e.mustRuntime("kill", "c1", "KILL")
	waitStatus(t, e, "c1", "stopped")
	if st := e.state("c1"); st["pid"].(float64) != 0 {
		t.Errorf("stopped container reports pid %v", st["pid"])
	}
	if out, err := e.runtime("kill", "c1"); err == nil {
		t.Errorf("kill of a stopped container succeeded: %q", out)
	}
	e.mustRuntime("delete", "c1")
	if _, err := os.Stat(filepath.Join(e.root, "c1")); !os.IsNotExist(err) {
		t.Errorf("state directory left after delete: %v", err)
	}
	if alive(pid) {
		t.Errorf("init %d still alive after delete", pid)
	}
}

func TestKillSignalForms(t *testing.T) {
	for _, sig := range []string{"TERM", "SIGTERM", "15", "sigterm"} {
		e := newEnv(t, sh("trap 'exit 42' TERM; while true; do sleep 0.05; done"), nil)
		e.mustRuntime("run", "-d", "--bundle", e.bundle, "c1")
		time.Sleep(100 * time.Millisecond)
		e.mustRuntime("kill", "c1", sig)
		waitStatus(t, e, "c1", "stopped")
		e.mustRuntime("delete", "c1")
	}
	e := newEnv(t, []string{"true"}, nil)
	for _, bad := range []string{"NOPE", "0", "99"} {
		if out, err := e.runtime("kill", "x", bad); err == nil || !strings.Contains(out, "signal") {
			t.Errorf("kill with signal %q: %v %q", bad, err, out)
		}
	}
}

func TestKillAllAndDeleteForce(t *testing.T) {
	// Without a pid namespace the children survive the init, so only
	// --all (through the cgroup) reaches them.
	e := newEnv(t, sh("sleep 1000 & sleep 1000 & exec sleep 1000"), nil)
	e.mustRuntime("run", "-d", "--bundle", e.bundle, "c1")
	pid := int(e.state("c1")["pid"].(float64))
	cg := containerCgroup(t, pid, "pids")
	var procs []string
	for i := 0; i < 100; i++ {
		procs = readLines(filepath.Join(cg, "cgroup.procs"))
		if len(procs) == 3 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(procs) != 3 {
		t.Fatalf("cgroup.procs %v, want 3 processes", procs)
	}
	e.mustRuntime("kill", "--all", "c1", "KILL")
	waitStatus(t, e, "c1", "stopped")
	e.mustRuntime("delete", "c1")
	if _, err := os.Stat(cg); !os.IsNotExist(err) {
		t.Errorf("cgroup %s left after delete: %v", cg, err)
	}

	e2 := newEnv(t, []string{"sleep", "1000"}, nil)
	e2.mustRuntime("run", "-d", "--bundle", e2.bundle, "c2")
	pid = int(e2.state("c2")["pid"].(float64))
	e2.mustRuntime("delete", "--force", "c2")
	if alive(pid) {
		t.Errorf("init %d alive after delete --force", pid)
	}
	// --force on a missing container is not an error (runc behaves so).
	e2.mustRuntime("delete", "--force", "nothere")
}

func TestList(t *testing.T) {
	e := newEnv(t, []string{"sleep", "1000"}, nil)
	e.mustRuntime("create", "--bundle", e.bundle, "a1")
	e.mustRuntime("run", "-d", "--bundle", e.bundle, "b2")
	out := e.mustRuntime("list")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "ID") || !strings.Contains(lines[0], "OWNER") {
		t.Fatalf("table:\n%s", out)
	}
	if f := strings.Fields(lines[1]); f[0] != "a1" || f[2] != "created" {
		t.Errorf("row %q", lines[1])
	}
	if f := strings.Fields(lines[2]); f[0] != "b2" || f[2] != "running" || f[5] != "root" {
		t.Errorf("row %q", lines[2])
	}
	var js []map[string]any
	if err := json.Unmarshal([]byte(e.mustRuntime("list", "--format", "json")), &js); err != nil || len(js) != 2 {
		t.Fatalf("json list: %v %v", err, js)
	}
	if js[1]["id"] != "b2" || js[1]["status"] != "running" || js[1]["bundle"] != e.bundle {
		t.Errorf("json entry %v", js[1])
	}
	if out := e.mustRuntime("list", "-q"); out != "a1\nb2\n" {
		t.Errorf("quiet list %q", out)
	}
}

func TestRunDetachedKeepsRunning(t *testing.T) {
	e := newEnv(t, []string{"sleep", "1000"}, nil)
	e.mustRuntime("run", "--detach", "--bundle", e.bundle, "c1")
	st := e.state("c1")
	if st["status"] != "running" {
		t.Fatalf("state %v", st)
	}
	// The init is in its own pid namespace: pid 1 there.
	pid := int(st["pid"].(float64))
	status, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if !strings.Contains(string(status), "NSpid:\t"+strconv.Itoa(pid)+"\t1\n") {
		t.Errorf("init is not pid 1 of a new pid namespace:\n%s", status)
	}
}

func TestVersion(t *testing.T) {
	needRoot(t)
	e := &env{t: t, root: t.TempDir()}
	out := e.mustRuntime("--version")
	lines := strings.Split(out, "\n")
	if !strings.HasPrefix(lines[0], "runc version ") || !strings.Contains(out, "\nspec: 1.") || !strings.Contains(out, "\ncommit: ") {
		t.Errorf("version output:\n%s", out)
	}
}

// TestConcurrentCreateSameID: of many creates racing on one id exactly one
// wins, and the state stays readable throughout.
func TestConcurrentCreateSameID(t *testing.T) {
	e := newEnv(t, []string{"sleep", "1000"}, nil)
	const n = 8
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		go func() {
			_, err := e.runtime("create", "--bundle", e.bundle, "race")
			errs <- err
		}()
	}
	ok := 0
	for i := 0; i < n; i++ {
		if <-errs == nil {
			ok++
		}
	}
	if ok != 1 {
		t.Fatalf("%d of %d concurrent creates succeeded, want 1", ok, n)
	}
	if st := e.state("race"); st["status"] != "created" {
		t.Errorf("state after race: %v", st)
	}
}

func TestDebugLog(t *testing.T) {
	e := newEnv(t, []string{"true"}, nil)
	logFile := filepath.Join(t.TempDir(), "debug.json")
	e.mustRuntime("--debug", "--log", logFile, "--log-format", "json", "create", "--bundle", e.bundle, "d1")
	b, _ := os.ReadFile(logFile)
	// One JSON object a line; other debug lines (seccomp) may come first.
	var entry map[string]any
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("debug log line %q: %v", l, err)
		}
		if m["msg"] == "container created" {
			entry = m
		}
	}
	if entry["level"] != "debug" || entry["id"] != "d1" {
		t.Errorf("debug log %q: no \"container created\" entry for d1", b)
	}
}

// TestSessionKeyring: a container gets a session keyring of its own
// (_ses.<id>) unless --no-new-keyring keeps the caller's.
func TestSessionKeyring(t *testing.T) {
	e := newEnv(t, []string{"sleep", "1000"}, nil)
	e.mustRuntime("run", "-d", "--bundle", e.bundle, "kr-own")
	e.mustRuntime("run", "-d", "--no-new-keyring", "--bundle", e.bundle, "kr-shared")
	keys, err := os.ReadFile("/proc/keys")
	if err != nil {
		t.Skip("no /proc/keys")
	}
	if !strings.Contains(string(keys), "_ses.kr-own:") {
		t.Errorf("no session keyring _ses.kr-own in /proc/keys:\n%s", keys)
	}
	if strings.Contains(string(keys), "_ses.kr-shared") {
		t.Error("--no-new-keyring still created a keyring")
	}
}
