// Package integration drives the cove-runc binary the way containerd and
// Podman do, against real namespaces, mounts and cgroups, and checks the
// effects in the kernel. The tests need root and Debian's busybox-static.
package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"cove/internal/runtime/bundle"
)

var (
	runtimeBin string // the cove-runc under test
	baseRootfs string // busybox tree the per-test roots link to
	skipReason string
)

func TestMain(m *testing.M) {
	os.Exit(setup(m))
}

func setup(m *testing.M) int {
	if os.Geteuid() != 0 {
		skipReason = "integration tests need root"
		return m.Run()
	}
	if _, err := os.Stat("/bin/busybox"); err != nil {
		skipReason = "needs /bin/busybox (Debian busybox-static)"
		return m.Run()
	}
	tmp, err := os.MkdirTemp("", "cove-it-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(tmp)
	runtimeBin = os.Getenv("COVE_RUNC")
	if runtimeBin == "" {
		runtimeBin = filepath.Join(tmp, "cove-runc")
		out, err := exec.Command("go", "build", "-o", runtimeBin, "cove/cmd/cove-runc").CombinedOutput()
		if err != nil {
			fmt.Fprintf(os.Stderr, "build cove-runc: %v\n%s", err, out)
			return 1
		}
	}
	baseRootfs = filepath.Join(tmp, "base")
	if err := makeBase(baseRootfs); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

// makeBase builds a busybox root: the binary, one symlink per applet, and a
// passwd/group with root, user (1000) and nobody.
func makeBase(dir string) error {
	for _, d := range []string{"bin", "etc", "proc", "sys", "dev", "tmp", "root"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return err
		}
	}
	if out, err := exec.Command("cp", "/bin/busybox", filepath.Join(dir, "bin/busybox")).CombinedOutput(); err != nil {
		return fmt.Errorf("copy busybox: %v: %s", err, out)
	}
	list, err := exec.Command("/bin/busybox", "--list").Output()
	if err != nil {
		return fmt.Errorf("busybox --list: %w", err)
	}
	for _, applet := range strings.Fields(string(list)) {
		if applet != "busybox" {
			os.Symlink("busybox", filepath.Join(dir, "bin", applet))
		}
	}
	os.Chmod(filepath.Join(dir, "tmp"), 0o1777)
	files := map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/tmp:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
		"etc/group":  "root:x:0:\nuser:x:1000:\nnogroup:x:65534:\n",
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// cloneTree copies a tree with hard links for files: cheap and private
// enough, since containers get the root read-only unless a test says not.
func cloneTree(src, dst string) error {
	return filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		switch {
		case fi.IsDir():
			return os.MkdirAll(target, fi.Mode().Perm()|0o700)
		case fi.Mode()&os.ModeSymlink != 0:
			l, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(l, target)
		default:
			return os.Link(p, target)
		}
	})
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
	root   string // --root
	bundle string
	spec   *specs.Spec
}

// newEnv makes a runtime root and a bundle running args; mutate edits the
// default spec. Containers left in the root are deleted at cleanup.
func newEnv(t *testing.T, args []string, mutate func(*specs.Spec)) *env {
	t.Helper()
	needRoot(t)
	dir := t.TempDir()
	e := &env{t: t, root: filepath.Join(dir, "state"), bundle: filepath.Join(dir, "bundle")}
	if err := cloneTree(baseRootfs, filepath.Join(e.bundle, "rootfs")); err != nil {
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
// writable root.
func testSpec(args []string) *specs.Spec {
	s := bundle.Default(false)
	s.Process.Terminal = false
	s.Process.Args = args
	s.Root.Readonly = false
	return s
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

// runtime runs cove-runc with the test's root; it returns combined output.
// Output goes through a file, not a pipe: a detached container inherits it
// and would hold a pipe open.
func (e *env) runtime(args ...string) (string, error) {
	cmd := exec.Command(runtimeBin, append([]string{"--root", e.root}, args...)...)
	out, err := os.CreateTemp("", "cove-out-")
	if err != nil {
		e.t.Fatal(err)
	}
	defer os.Remove(out.Name())
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	err = runTimeout(cmd, 30*time.Second)
	b, _ := os.ReadFile(out.Name())
	return string(b), err
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

// run runs the bundle in the foreground and returns stdout, stderr and the
// exit code.
func (e *env) run(id string, extra ...string) (string, string, int) {
	e.t.Helper()
	args := append([]string{"--root", e.root, "run", "--bundle", e.bundle}, extra...)
	cmd := exec.Command(runtimeBin, append(args, id)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := runTimeout(cmd, 30*time.Second)
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

func runTimeout(cmd *exec.Cmd, d time.Duration) error {
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		cmd.Process.Kill()
		cmd.WaitDelay = time.Second
		<-done
		return fmt.Errorf("timed out after %s", d)
	}
}

// state returns the container's state as cove-runc state prints it.
func (e *env) state(id string) map[string]any {
	e.t.Helper()
	out := e.mustRuntime("state", id)
	var m map[string]any
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		e.t.Fatalf("state %s: %v\n%s", id, err, out)
	}
	return m
}

// sh is a shell command line as process args.
func sh(script string) []string { return []string{"/bin/sh", "-c", script} }
