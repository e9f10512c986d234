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
	"cove/tests/internal/testenv"
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
	if r := testenv.SkipReason(); r != "" {
		skipReason = "integration tests: " + r
		return m.Run()
	}
	tmp, err := os.MkdirTemp("", "cove-it-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(tmp)
	if runtimeBin, err = testenv.RuntimeBin(tmp); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	baseRootfs = filepath.Join(tmp, "base")
	if err := testenv.MakeBusyboxRoot(baseRootfs, nil); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
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
func (e *env) runtime(args ...string) (string, error) {
	cmd := exec.Command(runtimeBin, append([]string{"--root", e.root}, args...)...)
	return testenv.CombinedOutput(cmd, 30*time.Second)
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
