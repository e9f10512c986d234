package rootfs

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// The integration tests re-execute the test binary as a child in new
// mount, pid, uts, ipc and network namespaces. The child builds the root
// with Prepare, Pivot and Finalize and prints its observations as a JSON
// object on stdout; the parent test asserts on them.
const (
	childEnv  = "COVE_ROOTFS_TEST_CHILD"
	configEnv = "COVE_ROOTFS_TEST_CONFIG"
	argEnv    = "COVE_ROOTFS_TEST_ARG"
)

// result is what a child reports: observation name -> value.
type result map[string]string

// scenario is the child side of a test. Each hook may be nil.
type scenario struct {
	pre          func(c *Config, arg string, r result) error // before Prepare
	afterPrepare func(c *Config, arg string, r result) error
	afterPivot   func(c *Config, arg string, r result) error // before Finalize
	probe        func(c *Config, arg string, r result) error // after Finalize
}

// scenarios is filled by the test files' init functions.
var scenarios = map[string]scenario{}

func TestMain(m *testing.M) {
	if name := os.Getenv(childEnv); name != "" {
		runChild(name)
		return
	}
	os.Exit(m.Run())
}

func runChild(name string) {
	runtime.LockOSThread()
	r := result{}
	if err := child(name, r); err != nil {
		r["child_err"] = err.Error()
	}
	if err := json.NewEncoder(os.Stdout).Encode(r); err != nil {
		os.Exit(2)
	}
	os.Exit(0)
}

func child(name string, r result) error {
	sc, ok := scenarios[name]
	if !ok {
		return fmt.Errorf("no scenario %q", name)
	}
	var c Config
	if err := json.Unmarshal([]byte(os.Getenv(configEnv)), &c); err != nil {
		return err
	}
	arg := os.Getenv(argEnv)
	hook := func(f func(*Config, string, result) error) error {
		if f == nil {
			return nil
		}
		return f(&c, arg, r)
	}
	if err := hook(sc.pre); err != nil {
		return fmt.Errorf("pre: %w", err)
	}
	if err := Prepare(&c); err != nil {
		r["prepare_err"] = err.Error()
		return hook(sc.afterPrepare)
	}
	if err := hook(sc.afterPrepare); err != nil {
		return fmt.Errorf("after prepare: %w", err)
	}
	if err := Pivot(&c); err != nil {
		r["pivot_err"] = err.Error()
		return nil
	}
	if err := hook(sc.afterPivot); err != nil {
		return fmt.Errorf("after pivot: %w", err)
	}
	if err := Finalize(&c); err != nil {
		r["finalize_err"] = err.Error()
		return nil
	}
	return hook(sc.probe)
}

// run starts scenario name in a child with config c and returns its report.
func run(t *testing.T, name string, c *Config, arg string, extraFlags uintptr) result {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+name, configEnv+"="+string(cfg), argEnv+"="+arg)
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags: syscall.CLONE_NEWNS | syscall.CLONE_NEWPID | syscall.CLONE_NEWUTS |
			syscall.CLONE_NEWIPC | syscall.CLONE_NEWNET | extraFlags,
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("child %s: %v\nstdout: %s\nstderr: %s", name, err, stdout.String(), stderr.String())
	}
	r := result{}
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		t.Fatalf("child %s output %q: %v (stderr %s)", name, stdout.String(), err, stderr.String())
	}
	if e := r["child_err"]; e != "" {
		t.Fatalf("child %s: %s", name, e)
	}
	return r
}

// newRootfs makes a temporary directory holding "rootfs" with a few
// directories and a marker file, and returns the directory and the rootfs.
func newRootfs(t *testing.T) (string, string) {
	t.Helper()
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(dir, "rootfs")
	for _, d := range []string{"proc", "sys", "dev", "tmp", "etc", "data"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "etc/marker"), []byte("rootfs"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, root
}

// mountinfo returns the current mount table as text for the report.
func mountinfo(r result) error {
	b, err := os.ReadFile("/proc/self/mountinfo")
	r["mountinfo"] = string(b)
	return err
}

// findMount returns the last mount at mountpoint in the report's table.
func findMount(t *testing.T, r result, mountpoint string) *mountInfo {
	t.Helper()
	mounts, err := parseMountinfo(strings.NewReader(r["mountinfo"]))
	if err != nil {
		t.Fatal(err)
	}
	var found *mountInfo
	for i := range mounts {
		if mounts[i].mountpoint == mountpoint {
			found = &mounts[i]
		}
	}
	return found
}

func mustMount(t *testing.T, r result, mountpoint string) *mountInfo {
	t.Helper()
	m := findMount(t, r, mountpoint)
	if m == nil {
		t.Fatalf("no mount at %s in\n%s", mountpoint, r["mountinfo"])
	}
	return m
}

func hasOpt(list, opt string) bool {
	for _, o := range strings.Split(list, ",") {
		if o == opt {
			return true
		}
	}
	return false
}

// errName turns an error into its errno name, "ok" for nil.
func errName(err error) string {
	if err == nil {
		return "ok"
	}
	var e syscall.Errno
	if errors.As(err, &e) {
		return unix.ErrnoName(e)
	}
	return err.Error()
}

func tryWrite(path string) string {
	return errName(os.WriteFile(path, []byte("x"), 0o644))
}

// describe reports type, device numbers, permissions and owner of path.
func describe(path string) string {
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		return errName(err)
	}
	kind := map[uint32]string{unix.S_IFCHR: "c", unix.S_IFBLK: "b", unix.S_IFIFO: "p",
		unix.S_IFREG: "f", unix.S_IFDIR: "d", unix.S_IFLNK: "l"}[st.Mode&unix.S_IFMT]
	return fmt.Sprintf("%s %d:%d %04o %d:%d", kind, unix.Major(st.Rdev), unix.Minor(st.Rdev),
		st.Mode&0o7777, st.Uid, st.Gid)
}

// runUserNS is run in a new user namespace (host root mapped to root) that
// shares the host's network namespace.
func runUserNS(t *testing.T, name string, c *Config) result {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+name, configEnv+"="+string(cfg))
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  syscall.CLONE_NEWUSER | syscall.CLONE_NEWNS | syscall.CLONE_NEWPID,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: 0, Size: 65536}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: 0, Size: 65536}},
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("child %s: %v\nstdout: %s\nstderr: %s", name, err, stdout.String(), stderr.String())
	}
	r := result{}
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		t.Fatalf("child %s output %q: %v", name, stdout.String(), err)
	}
	if e := r["child_err"]; e != "" {
		t.Fatalf("child %s: %s", name, e)
	}
	return r
}
