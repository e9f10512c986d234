// Package security is cove-runc's escape-attempt suite: each test mounts an
// attack that broke a container runtime before (runc, crun, containerd,
// CRI-O) and checks in the kernel that it failed closed: host files
// unchanged, fds absent, writes denied, capability sets as asked. The
// attacker inside the containers is testdata/esc, a static helper.
//
// The tests need root and Debian's busybox-static; they skip otherwise.
// COVE_RUNC names the cove-runc under test (default: built from this tree).
// Container ids start with "esc-".
package security

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"cove/internal/runtime/bundle"
	"cove/tests/internal/testenv"
)

var (
	runtimeBin string // the cove-runc under test
	helperBin  string // testdata/esc, static
	baseRootfs string // busybox tree plus /bin/esc
	skipReason string
)

func TestMain(m *testing.M) {
	os.Exit(setup(m))
}

func setup(m *testing.M) int {
	if r := testenv.SkipReason(); r != "" {
		skipReason = "security tests: " + r
		return m.Run()
	}
	tmp, err := os.MkdirTemp("", "cove-esc-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(tmp)
	if runtimeBin, err = testenv.RuntimeBin(tmp); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	helperBin = filepath.Join(tmp, "esc")
	if err := testenv.GoBuild(helperBin, "./testdata/esc", true); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	// The busybox root, with the attacker as /bin/esc.
	baseRootfs = filepath.Join(tmp, "base")
	if err := testenv.MakeBusyboxRoot(baseRootfs, map[string]string{helperBin: "bin/esc"}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

// copyTree copies a tree: files are real copies, so that a test may chmod,
// setxattr or replace them without touching the base.
func copyTree(src, dst string) error {
	out, err := exec.Command("cp", "-a", src+"/.", dst).CombinedOutput()
	if err != nil {
		return fmt.Errorf("cp -a %s %s: %v: %s", src, dst, err, out)
	}
	return nil
}

func needRoot(t *testing.T) {
	t.Helper()
	if skipReason != "" {
		t.Skip(skipReason)
	}
}

// env is one test's runtime root and bundle.
type env struct {
	t      *testing.T
	dir    string // the test's scratch directory
	root   string // --root
	bundle string
	rootfs string
	spec   *specs.Spec
	// bin is the cove-runc to run, runtimeBin unless a test set a copy.
	bin string
	// extraEnv is added to cove-runc's environment.
	extraEnv []string
	// noOpenat2 runs cove-runc under a seccomp filter failing openat2
	// with ENOSYS, so that its fallback path resolution is used.
	noOpenat2 bool
}

// newEnv makes a runtime root and a bundle running args; mutate edits the
// default spec. Containers left in the root are deleted at cleanup.
func newEnv(t *testing.T, args []string, mutate func(*specs.Spec)) *env {
	t.Helper()
	needRoot(t)
	dir := t.TempDir()
	e := &env{t: t, dir: dir, root: filepath.Join(dir, "state"), bundle: filepath.Join(dir, "bundle")}
	e.rootfs = filepath.Join(e.bundle, "rootfs")
	if err := os.MkdirAll(e.rootfs, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := copyTree(baseRootfs, e.rootfs); err != nil {
		t.Fatal(err)
	}
	e.spec = testSpec(args)
	if mutate != nil {
		mutate(e.spec)
	}
	e.writeSpec()
	t.Cleanup(func() {
		out, _ := e.runtime("list", "-q")
		for _, id := range strings.Fields(out) {
			e.runtime("delete", "--force", id)
		}
	})
	return e
}

// testSpec is `cove-runc spec` without a terminal, running args, with a
// writable root, no seccomp filter and no cgroup mount.
func testSpec(args []string) *specs.Spec {
	s := bundle.Default(false)
	s.Process.Terminal = false
	s.Process.Args = args
	s.Root.Readonly = false
	// Each test attacks one layer of defence (fd hygiene, path
	// resolution, capabilities, dumpability...): a seccomp filter must
	// not be what makes an attack fail.
	s.Linux.Seccomp = nil
	// Nor the cgroup mount, except where a test asks for it: a fresh v1
	// mount fails with EBUSY now and then while other cgroup work runs on
	// the host, which is no attack.
	var mounts []specs.Mount
	for _, m := range s.Mounts {
		if m.Type != "cgroup" {
			mounts = append(mounts, m)
		}
	}
	s.Mounts = mounts
	return s
}

// cgroupMount is the default spec's /sys/fs/cgroup mount.
func cgroupMount() specs.Mount {
	for _, m := range bundle.Default(false).Mounts {
		if m.Type == "cgroup" {
			return m
		}
	}
	panic("default spec has no cgroup mount")
}

func (e *env) writeSpec() {
	b, err := json.MarshalIndent(e.spec, "", " ")
	if err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(e.bundle, "config.json"), b, 0o644); err != nil {
		e.t.Fatal(err)
	}
}

// command is cove-runc with the test's root and args, under the openat2
// filter when the env asks for it.
func (e *env) command(args ...string) *exec.Cmd {
	bin := e.bin
	if bin == "" {
		bin = runtimeBin
	}
	argv := append([]string{bin, "--root", e.root}, args...)
	if e.noOpenat2 {
		argv = append([]string{helperBin, "noopenat2"}, argv...)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	if len(e.extraEnv) > 0 {
		cmd.Env = append(os.Environ(), e.extraEnv...)
	}
	return cmd
}

// runtime runs cove-runc and returns its combined output.
func (e *env) runtime(args ...string) (string, error) {
	return testenv.CombinedOutput(e.command(args...), 30*time.Second)
}

// mustRuntime runs cove-runc and fails the test on error.
func (e *env) mustRuntime(args ...string) string {
	e.t.Helper()
	out, err := e.runtime(args...)
	if err != nil {
		e.t.Fatalf("cove-runc %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// run runs the bundle in the foreground; it returns stdout, stderr and the
// exit code (-1 when cove-runc could not run at all).
func (e *env) run(id string, extra ...string) (string, string, int) {
	e.t.Helper()
	cmd := e.command(append(append([]string{"run", "--bundle", e.bundle}, extra...), id)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := testenv.RunTimeout(cmd, 30*time.Second)
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		e.t.Fatalf("run %s: %v\n%s", id, err, stderr.String())
	}
	return stdout.String(), stderr.String(), code
}

// mustRun runs the bundle and fails unless it exits 0; it returns stdout.
func (e *env) mustRun(id string) string {
	e.t.Helper()
	out, errOut, code := e.run(id)
	if code != 0 {
		e.t.Fatalf("run %s: exit %d\nstdout: %s\nstderr: %s", id, code, out, errOut)
	}
	return out
}

// start creates and starts a detached container and returns its init pid.
func (e *env) start(id string) int {
	e.t.Helper()
	e.mustRuntime("create", "--bundle", e.bundle, id)
	e.mustRuntime("start", id)
	return e.pid(id)
}

// pid returns the container's init pid from cove-runc state.
func (e *env) pid(id string) int {
	e.t.Helper()
	out := e.mustRuntime("state", id)
	var st specs.State
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		e.t.Fatalf("state %s: %v\n%s", id, err, out)
	}
	return st.Pid
}

// sh is a shell command line as process args.
func sh(script string) []string { return []string{"/bin/sh", "-c", script} }

// hashFile returns the hex sha256 of a file.
func hashFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// resolverModes runs f with cove-runc as it is and with openat2 failing
// ENOSYS, so that both path resolvers of internal/pathrs meet the attack.
func resolverModes(t *testing.T, f func(t *testing.T, noOpenat2 bool)) {
	for _, mode := range []struct {
		name string
		off  bool
	}{{"openat2", false}, {"fallback", true}} {
		t.Run(mode.name, func(t *testing.T) {
			needRoot(t)
			if mode.off {
				out, _ := exec.Command(helperBin, "noopenat2", helperBin, "probe-openat2").CombinedOutput()
				if strings.TrimSpace(string(out)) != "ENOSYS" {
					t.Fatalf("openat2 filter does not work: %s", out)
				}
			}
			f(t, mode.off)
		})
	}
}

// waitFor polls cond every 20ms until it holds or d passes.
func waitFor(d time.Duration, cond func() bool) bool {
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return true
		}
	}
	return cond()
}

// hostMounts returns the mount points in the test process's mount table at
// or under dir.
func hostMounts(t *testing.T, dir string) []string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) > 4 && (f[4] == dir || strings.HasPrefix(f[4], dir+"/")) {
			out = append(out, f[4])
		}
	}
	return out
}

// listTree returns every path under dir, relative, sorted by the walk.
func listTree(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && p != dir {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, rel)
		}
		return nil
	})
	return out
}

func itoa(n int) string { return strconv.Itoa(n) }
