package clients

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// daemon is an engine process started by a test. Cleanup stops it by its
// pid: SIGTERM, then SIGKILL if it has not exited after a grace period.
type daemon struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

// startDaemon starts argv with its output in logPath and waits until sock
// accepts connections. The daemon is stopped at cleanup, after cleanups
// registered later (which remove what the test created through it).
func startDaemon(t *testing.T, logPath, sock string, env []string, argv ...string) *daemon {
	t.Helper()
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(os.Environ(), env...)
	// Its own process group, so a terminal's ^C reaches the test only.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", argv[0], err)
	}
	d := &daemon{name: filepath.Base(argv[0]), cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() { cmd.Wait(); close(d.done) }()
	t.Cleanup(d.stop)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if c, err := net.Dial("unix", sock); err == nil {
			c.Close()
			return d
		}
		select {
		case <-d.done:
			t.Fatalf("%s exited during startup:\n%s", d.name, tail(logPath, 30))
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s not ready after 30s:\n%s", d.name, sock, tail(logPath, 30))
		}
	}
}

func (d *daemon) stop() {
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
		return
	case <-time.After(20 * time.Second):
	}
	d.cmd.Process.Kill()
	<-d.done
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// result is a finished command: combined output and exit code (-1 when it
// could not run or timed out).
type result struct {
	out  string
	code int
	err  error
}

func (r result) String() string {
	return fmt.Sprintf("exit %d (%v): %s", r.code, r.err, strings.TrimSpace(r.out))
}

// runCmd runs argv with a time limit. Output goes through a file, not a
// pipe: a detached container may inherit it and hold a pipe open.
func runCmd(env []string, timeout time.Duration, argv ...string) result {
	f, err := os.CreateTemp("", "cove-cli-out-")
	if err != nil {
		return result{code: -1, err: err}
	}
	defer os.Remove(f.Name())
	defer f.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(os.Environ(), env...)
	if err := cmd.Start(); err != nil {
		return result{code: -1, err: err}
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var res result
	select {
	case err := <-done:
		res.err = err
		res.code = cmd.ProcessState.ExitCode()
	case <-time.After(timeout):
		cmd.Process.Kill()
		<-done
		res.err, res.code = fmt.Errorf("timed out after %s", timeout), -1
	}
	b, _ := os.ReadFile(f.Name())
	res.out = string(b)
	return res
}

// client runs one engine's command line with fixed leading arguments, and
// logs each command with its outcome, so a test's -v output is the table
// of what worked.
type client struct {
	t       *testing.T
	argv    []string
	env     []string
	timeout time.Duration
	missing *[]string // commands failing only for a verb cove-runc lacks
}

// with returns a copy of the client that reports to t (a subtest).
// Commands failing that way are collected; call done at the end of the
// subtest to report them.
func (c *client) with(t *testing.T) *client {
	d := *c
	d.t = t
	d.missing = new([]string)
	return &d
}

// notImplemented is what cove-runc prints for a verb it does not have yet.
const notImplemented = "not implemented yet"

// skipMissingVerbs turns failures caused only by a verb cove-runc does not
// implement yet into a skip of the scenario (with the verbs named), so CI
// stays green while those verbs are being written.
const skipMissingVerbs = false

// done reports the commands that failed only because cove-runc lacks a
// verb: an error, or a skip under skipMissingVerbs when nothing else failed.
func (c *client) done() {
	c.t.Helper()
	if c.missing == nil || len(*c.missing) == 0 {
		return
	}
	msg := "cove-runc lacks a verb these commands need: " + strings.Join(*c.missing, "; ")
	if skipMissingVerbs && !c.t.Failed() {
		c.t.Skip(msg)
	}
	c.t.Error(msg)
}

// run runs the client with args and returns the result, logging it.
func (c *client) run(args ...string) result {
	c.t.Helper()
	r := runCmd(c.env, c.timeout, append(append([]string{}, c.argv...), args...)...)
	status := "ok"
	if r.code != 0 {
		status = fmt.Sprintf("exit %d", r.code)
	}
	c.t.Logf("%s %s: %s", filepath.Base(c.argv[0]), strings.Join(args, " "), status)
	return r
}

// must runs the client and fails the test unless it exits 0; it returns
// the output.
func (c *client) must(args ...string) string {
	c.t.Helper()
	r := c.run(args...)
	if r.code != 0 {
		c.t.Fatalf("%s %s: %v", filepath.Base(c.argv[0]), strings.Join(args, " "), r)
	}
	return r.out
}

// check runs the client and reports an error (not fatal) unless it exits
// 0; it returns the output and whether it succeeded.
func (c *client) check(args ...string) (string, bool) {
	c.t.Helper()
	r := c.run(args...)
	if r.code != 0 && c.missing != nil && strings.Contains(r.out, notImplemented) {
		*c.missing = append(*c.missing, strings.Join(args, " ")+": "+firstLine(r.out))
		return r.out, false
	}
	if r.code != 0 {
		c.t.Errorf("%s %s: %v", filepath.Base(c.argv[0]), strings.Join(args, " "), r)
		return r.out, false
	}
	return r.out, true
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// cgroupFile reads a cgroup v1 file of pid's cgroup in the given
// controller (or of the cgroup2 hierarchy when controller is "").
func cgroupFile(pid int, controller, file string) (string, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			if c == controller {
				v, err := os.ReadFile(filepath.Join("/sys/fs/cgroup", controller, parts[2], file))
				return strings.TrimSpace(string(v)), err
			}
		}
		if parts[0] == "0" && controller == "" {
			v, err := os.ReadFile(filepath.Join("/sys/fs/cgroup/unified", parts[2], file))
			return strings.TrimSpace(string(v)), err
		}
	}
	return "", fmt.Errorf("pid %d: no %s cgroup", pid, controller)
}

// firstLine is the first non-empty line of s, trimmed.
func firstLine(s string) string {
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			return l
		}
	}
	return ""
}

// removeCgroupTree removes the cgroup /name and the empty cgroups below it
// in every hierarchy, deepest first, at cleanup: engines leave their
// parent cgroups behind. A cgroup that still has processes stays.
func removeCgroupTree(t *testing.T, name string) {
	t.Cleanup(func() {
		hs, _ := filepath.Glob("/sys/fs/cgroup/*")
		for _, h := range hs {
			top := filepath.Join(h, name)
			var dirs []string
			filepath.WalkDir(top, func(p string, d os.DirEntry, err error) error {
				if err == nil && d.IsDir() {
					dirs = append(dirs, p)
				}
				return nil
			})
			for i := len(dirs) - 1; i >= 0; i-- {
				os.Remove(dirs[i])
			}
		}
	})
}

// probeOutputs holds probeScript's output per runtime name and variant
// ("runc/default", "cove-runc/default", ...).
type probeOutputs map[string]string

// probeDiffersOK are mount lines where cove-runc differs from runc on
// purpose: a read-only /sys/fs/cgroup tmpfs when the mount says ro (runc
// 1.1 leaves it writable) and the hybrid cgroup2 hierarchy mounted too.
var probeDiffersOK = []string{"/sys/fs/cgroup tmpfs ", "/sys/fs/cgroup/unified "}

// compare reports, per variant, the lines of probeScript's output that
// only runc's or only cove-runc's container printed.
func (p probeOutputs) compare(t *testing.T, variants ...string) {
	t.Helper()
	for _, v := range variants {
		a, okA := p["runc/"+v]
		b, okB := p["cove-runc/"+v]
		if !okA || !okB {
			continue
		}
		count := map[string]int{}
		for _, l := range strings.Split(a, "\n") {
			count[l]++
		}
		for _, l := range strings.Split(b, "\n") {
			count[l]--
		}
		var onlyRunc, onlyCove []string
		for l, n := range count {
			if slices.ContainsFunc(probeDiffersOK, func(p string) bool { return strings.HasPrefix(l, p) }) {
				continue
			}
			for ; n > 0; n-- {
				onlyRunc = append(onlyRunc, l)
			}
			for ; n < 0; n++ {
				onlyCove = append(onlyCove, l)
			}
		}
		sort.Strings(onlyRunc)
		sort.Strings(onlyCove)
		if len(onlyRunc)+len(onlyCove) > 0 {
			t.Errorf("probe %q differs:\nonly with runc:\n  %s\nonly with cove-runc:\n  %s", v,
				strings.Join(onlyRunc, "\n  "), strings.Join(onlyCove, "\n  "))
		} else {
			t.Logf("probe %q: runc and cove-runc containers see the same (%d lines)", v, strings.Count(a, "\n"))
		}
	}
}
