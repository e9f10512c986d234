// Package engine_test drives the cove engine end to end as a user would:
// the real cove, cove-monitor and cove-runc binaries, a busybox image
// imported from a rootfs tarball, real containers. Root only; each test
// uses its own --root and run root under a temporary directory, container
// names start with "ceng".
package engine_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var (
	binDir  string // cove, cove-monitor, cove-runc
	rootTar string // busybox rootfs tarball
)

func TestMain(m *testing.M) {
	if os.Geteuid() != 0 {
		fmt.Println("skipping: tests/engine needs root")
		os.Exit(0)
	}
	dir, err := os.MkdirTemp("", "cove-engine-test-")
	if err != nil {
		panic(err)
	}
	code := setup(dir)
	if code == 0 {
		code = m.Run()
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

// setup builds cove, cove-monitor and cove-runc and a busybox rootfs
// tarball under dir. COVE_BIN (a directory holding the three binaries) and
// COVE_ROOTFS_TAR (a busybox rootfs tarball, see tests/fixtures/mkrootfs.sh)
// take prebuilt ones instead, for hosts without Go or bash such as the
// cgroup v2 VM (tests/cgroupv2/run.sh).
func setup(dir string) int {
	if rootTar = os.Getenv("COVE_ROOTFS_TAR"); rootTar == "" {
		if code := mkRootTar(dir); code != 0 {
			return code
		}
	}
	if binDir = os.Getenv("COVE_BIN"); binDir != "" {
		return 0
	}
	binDir = filepath.Join(dir, "bin")
	for _, b := range []string{"cove", "cove-monitor", "cove-runc"} {
		cmd := exec.Command("go", "build", "-o", filepath.Join(binDir, b), "../../cmd/"+b)
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "build %s: %v\n%s", b, err, out)
			return 1
		}
	}
	return 0
}

// mkRootTar makes the busybox rootfs tarball under dir.
func mkRootTar(dir string) int {
	rootfs := filepath.Join(dir, "rootfs")
	if out, err := exec.Command("../fixtures/mkrootfs.sh", rootfs).CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "mkrootfs: %v\n%s", err, out)
		return 1
	}
	rootTar = filepath.Join(dir, "busybox.tar")
	if out, err := exec.Command("tar", "-C", rootfs, "-cf", rootTar, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "tar: %v\n%s", err, out)
		return 1
	}
	return 0
}

// env is one test's private cove store with the busybox image imported.
type env struct {
	t       *testing.T
	root    string
	runRoot string
	extra   []string // more environment for cove
}

const img = "localhost/ceng-busybox:latest"

func newEnv(t *testing.T) *env {
	t.Helper()
	dir := t.TempDir()
	// The run root holds unix sockets (108-byte paths): keep it short.
	run, err := os.MkdirTemp("/tmp", "ceng")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(run) })
	e := &env{t: t, root: filepath.Join(dir, "root"), runRoot: run}
	e.mustCove("image", "import", rootTar, img)
	t.Cleanup(e.teardown)
	return e
}

// teardown removes every container and checks nothing leaked.
func (e *env) teardown() {
	ids, _ := e.cove("ps", "-aq", "--no-trunc")
	for _, id := range strings.Fields(ids) {
		e.cove("rm", "-f", id)
	}
	// Supervisors finishing their cleanup callbacks.
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) && len(monitorsUnder(e.runRoot)) > 0 {
		time.Sleep(20 * time.Millisecond)
	}
	if m := monitorsUnder(e.runRoot); len(m) > 0 {
		e.t.Errorf("supervisors left running: pids %v", m)
	}
	out, _ := e.cove("system", "check")
	if strings.TrimSpace(out) != "ok" {
		e.t.Errorf("system check after the test found leftovers:\n%s", out)
	}
	if m := mountsUnder(e.runRoot); len(m) > 0 {
		e.t.Errorf("mounts left under %s: %v", e.runRoot, m)
		for _, p := range m {
			exec.Command("umount", "-l", p).Run()
		}
	}
}

// monitorsUnder lists cove-monitor processes whose run dir is under dir.
func monitorsUnder(dir string) []string {
	var out []string
	ents, _ := os.ReadDir("/proc")
	for _, ent := range ents {
		b, err := os.ReadFile(filepath.Join("/proc", ent.Name(), "cmdline"))
		if err != nil {
			continue
		}
		if strings.Contains(string(b), "run-dir="+dir+"/") {
			out = append(out, ent.Name())
		}
	}
	return out
}

func mountsUnder(dir string) []string {
	b, _ := os.ReadFile("/proc/self/mountinfo")
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && strings.HasPrefix(f[4], dir+"/") {
			out = append(out, f[4])
		}
	}
	return out
}

func (e *env) command(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "cove"), append([]string{"--root", e.root}, args...)...)
	// No network unless a test asks: tests stay off the host's cove0.
	cmd.Env = append(os.Environ(), "COVE_RUNROOT="+e.runRoot, "COVE_DEFAULT_NETWORK=none")
	cmd.Env = append(cmd.Env, e.extra...)
	return cmd
}

// cove runs cove and returns stdout+stderr and the exit code.
func (e *env) cove(args ...string) (string, int) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := e.command(ctx, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			e.t.Fatalf("cove %v: %v", args, err)
		}
		code = ee.ExitCode()
	}
	return out.String(), code
}

// split runs cove and returns stdout and stderr separately.
func (e *env) split(args ...string) (string, string, int) {
	e.t.Helper()
	cmd := e.command(context.Background(), args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		e.t.Fatalf("cove %v: %v", args, err)
	}
	return out.String(), errb.String(), code
}

func (e *env) mustCove(args ...string) string {
	e.t.Helper()
	out, code := e.cove(args...)
	if code != 0 {
		e.t.Fatalf("cove %v: exit %d\n%s", args, code, out)
	}
	return strings.TrimSpace(out)
}

// inspect returns one field of `cove inspect` through a template.
func (e *env) inspect(name, tmpl string) string {
	e.t.Helper()
	return e.mustCove("inspect", "-f", tmpl, name)
}

// eventually polls cond for up to d.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
