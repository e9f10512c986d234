package seccomp

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// childEnv carries a profile to the test binary run as a child that
// installs it (a filter cannot be removed once the test process has it).
const childEnv = "COVE_SECCOMP_TEST_PROFILE"

func TestMain(m *testing.M) {
	if p := os.Getenv(childEnv); p != "" {
		os.Exit(installChild(p))
	}
	os.Exit(m.Run())
}

// installChild installs the profile with no_new_privs (no root needed),
// then calls sysinfo on this thread and on another one and prints the
// errnos and whether a listener fd came back.
func installChild(profile string) int {
	runtime.LockOSThread()
	var s specs.LinuxSeccomp
	if err := json.Unmarshal([]byte(profile), &s); err != nil {
		fmt.Println("error:", err)
		return 1
	}
	f, err := Compile(&s)
	if err != nil {
		fmt.Println("error:", err)
		return 1
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		fmt.Println("error:", err)
		return 1
	}
	fd, err := f.Install()
	if err != nil {
		fmt.Println("error:", err)
		return 1
	}
	_, _, here := unix.RawSyscall(unix.SYS_SYSINFO, 0, 0, 0)
	other := make(chan unix.Errno)
	go func() {
		runtime.LockOSThread() // a thread other than the installing one
		_, _, e := unix.RawSyscall(unix.SYS_SYSINFO, 0, 0, 0)
		other <- e
	}()
	fmt.Printf("here=%d other=%d listener=%v\n", int(here), int(<-other), fd >= 0)
	return 0
}

func runChild(t *testing.T, s *specs.LinuxSeccomp) string {
	t.Helper()
	b, _ := json.Marshal(s)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+string(b))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v: %s", err, out)
	}
	return strings.TrimSpace(string(out))
}

// TestInstall loads compiled filters into a real kernel: the errno comes
// back, TSYNC reaches the other threads, NOTIFY returns a listener fd.
func TestInstall(t *testing.T) {
	errno := func(n uint) *specs.LinuxSeccomp {
		return &specs.LinuxSeccomp{DefaultAction: specs.ActAllow,
			Syscalls: []specs.LinuxSyscall{{Names: []string{"sysinfo"}, Action: specs.ActErrno, ErrnoRet: &n}}}
	}
	// sysinfo(NULL) unfiltered fails with EFAULT (14).
	if got := runChild(t, errno(61)); got != "here=61 other=14 listener=false" {
		t.Errorf("plain: %q (the filter is per thread without TSYNC)", got)
	}
	s := errno(62)
	s.Flags = []specs.LinuxSeccompFlag{"SECCOMP_FILTER_FLAG_TSYNC", specs.LinuxSeccompFlagLog}
	if got := runChild(t, s); got != "here=62 other=62 listener=false" {
		t.Errorf("TSYNC: %q", got)
	}
	s = errno(63)
	s.ListenerPath = "/unused"
	s.Syscalls = append(s.Syscalls, specs.LinuxSyscall{Names: []string{"mkdirat"}, Action: specs.ActNotify})
	if got := runChild(t, s); got != "here=63 other=14 listener=true" {
		t.Errorf("NOTIFY: %q", got)
	}
	// The default profile loads too (all three architecture sections).
	if got := runChild(t, DefaultProfile(defaultCaps)); !strings.HasPrefix(got, "here=14 other=14") {
		t.Errorf("default profile: %q", got)
	}
}
