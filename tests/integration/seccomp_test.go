package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Syscall numbers (x86_64) the seccomp tests make through testdata/sysc.
const (
	nrGetpgid     = 121
	nrPersonality = 135
	nrSysinfo     = 99
	nrSocket      = 41
	nrKeyctl      = 250
	nrAddKey      = 248
	nrUnshare     = 272
	nrClone3      = 435
	nrIoUringSet  = 425
	nrBPF         = 321
	nrUserfaultfd = 323
	nrKexecLoad   = 246
	nrPerfOpen    = 298
)

var (
	syscBuild sync.Once
	syscBin   []byte
	syscErr   error
)

// sysc returns the static syscall helper: built once per test binary (and
// kept in memory, so nothing is left behind), or the prebuilt one named by
// COVE_SYSC (the cgroup v2 VM has no go).
func sysc(t *testing.T) []byte {
	t.Helper()
	if p := os.Getenv("COVE_SYSC"); p != "" {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("needs go to build testdata/sysc, or COVE_SYSC")
	}
	syscBuild.Do(func() {
		dir, err := os.MkdirTemp("", "cove-sysc-")
		if err != nil {
			syscErr = err
			return
		}
		defer os.RemoveAll(dir)
		bin := filepath.Join(dir, "sysc")
		cmd := exec.Command("go", "build", "-o", bin, "./testdata/sysc")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			syscErr = fmt.Errorf("%v: %s", err, out)
			return
		}
		syscBin, syscErr = os.ReadFile(bin)
	})
	if syscErr != nil {
		t.Fatalf("build testdata/sysc: %v", syscErr)
	}
	return syscBin
}

// secEnv is newEnv with the sysc helper in the rootfs as /bin/sysc.
func secEnv(t *testing.T, args []string, mutate func(*specs.Spec)) *env {
	t.Helper()
	needRoot(t)
	bin := sysc(t)
	e := newEnv(t, args, mutate)
	if err := os.WriteFile(filepath.Join(e.bundle, "rootfs/bin/sysc"), bin, 0o755); err != nil {
		t.Fatal(err)
	}
	return e
}

// calls turns call lists into sysc arguments: {{99}, {41, 40, 1, 0}}.
func calls(cs ...[]string) []string {
	args := []string{"/bin/sysc"}
	for i, c := range cs {
		if i > 0 {
			args = append(args, ":")
		}
		args = append(args, c...)
	}
	return args
}

func call(nr int, args ...string) []string {
	return append([]string{itoa(nr)}, args...)
}

func itoa(n int) string { return strconv.Itoa(n) }

// errnos parses sysc's output into the errno of each call, in order.
func errnos(t *testing.T, out string) []string {
	t.Helper()
	var es []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		i := strings.Index(l, "errno=")
		if i < 0 {
			t.Fatalf("sysc output %q", out)
		}
		es = append(es, l[i+len("errno="):])
	}
	return es
}

func uintp(v uint) *uint { return &v }

// allowAllBut is a profile allowing everything except the given rules.
func allowAllBut(rules ...specs.LinuxSyscall) *specs.LinuxSeccomp {
	return &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: rules}
}

// TestSecDefaultProfile: the default profile (bundle.Default) denies what
// Docker's does, with the errno libc expects: ENOSYS for clone3 and for
// syscalls newer than the filter knows, EPERM for the rest; allowed calls
// work.
func TestSecDefaultProfile(t *testing.T) {
	cases := []struct {
		name  string
		call  []string
		errno string
	}{
		{"unknown high syscall", call(1000), "38"},
		{"clone3", call(nrClone3, "0", "0"), "38"},
		{"socket AF_VSOCK", call(nrSocket, "40", "1", "0"), "1"},
		{"socket AF_ALG", call(nrSocket, "38", "5", "0"), "1"},
		{"socket AF_UNIX", call(nrSocket, "1", "1", "0"), "0"},
		{"socket AF_NETLINK", call(nrSocket, "16", "3", "0"), "0"},
		{"keyctl", call(nrKeyctl, "0", "0"), "1"},
		{"add_key", call(nrAddKey, "0", "0", "0", "0", "0"), "1"},
		{"unshare CLONE_NEWNS", call(nrUnshare, "0x20000"), "1"},
		{"io_uring_setup", call(nrIoUringSet, "1", "0"), "1"},
		{"bpf", call(nrBPF, "0", "0", "0"), "1"},
		{"userfaultfd", call(nrUserfaultfd, "0"), "1"},
		{"kexec_load", call(nrKexecLoad, "0", "0", "0", "0"), "1"},
		{"perf_event_open", call(nrPerfOpen, "0", "0", "0", "0", "0"), "1"},
		{"personality query", call(nrPersonality, "0xffffffff"), "0"},
		{"personality READ_IMPLIES_EXEC", call(nrPersonality, "0x0400000"), "1"},
		{"getpgid", call(nrGetpgid, "0"), "0"},
	}
	var cs [][]string
	for _, c := range cases {
		cs = append(cs, c.call)
	}
	e := secEnv(t, calls(cs...), nil)
	if e.spec.Linux.Seccomp == nil {
		t.Fatal("bundle.Default has no seccomp profile")
	}
	got := errnos(t, e.mustRun("sec-default"))
	if len(got) != len(cases) {
		t.Fatalf("%d results for %d calls", len(got), len(cases))
	}
	for i, c := range cases {
		if got[i] != c.errno {
			t.Errorf("%s: errno %s, want %s", c.name, got[i], c.errno)
		}
	}
}

// TestSecStatus: the container process runs in seccomp filter mode.
func TestSecStatus(t *testing.T) {
	e := newEnv(t, []string{"grep", "^Seccomp:", "/proc/self/status"}, nil)
	if out := e.mustRun("sec-status"); !strings.Contains(out, "2") {
		t.Errorf("/proc/self/status: %q, want Seccomp: 2 (filter)", out)
	}
}

// TestSecErrnoRet: SCMP_ACT_ERRNO returns errnoRet, and defaultErrnoRet
// applies to a default ERRNO action.
func TestSecErrnoRet(t *testing.T) {
	e := secEnv(t, calls(call(nrSysinfo, "0"), call(nrGetpgid, "0")), func(s *specs.Spec) {
		s.Linux.Seccomp = allowAllBut(
			specs.LinuxSyscall{Names: []string{"sysinfo"}, Action: specs.ActErrno, ErrnoRet: uintp(77)},
			specs.LinuxSyscall{Names: []string{"getpgid"}, Action: specs.ActErrno})
	})
	if got := errnos(t, e.mustRun("sec-errno")); got[0] != "77" || got[1] != "1" {
		t.Errorf("errnos %v, want [77 1] (errnoRet, then EPERM by default)", got)
	}
}

// TestSecKill: KILL_PROCESS and KILL (thread) end the process by SIGSYS.
func TestSecKill(t *testing.T) {
	e := secEnv(t, calls(call(nrSysinfo, "0")), func(s *specs.Spec) {
		s.Linux.Seccomp = allowAllBut(specs.LinuxSyscall{Names: []string{"sysinfo"}, Action: specs.ActKillProcess})
	})
	if out, _, code := e.run("sec-killp"); code != 128+31 || out != "" {
		t.Errorf("KILL_PROCESS: exit %d, output %q; want 159 (SIGSYS) and nothing", code, out)
	}
	// busybox is single-threaded: KILL (thread) kills it.
	e = newEnv(t, []string{"sh", "-c", "mkdir /tmp/x; echo status=$?"}, func(s *specs.Spec) {
		s.Linux.Seccomp = allowAllBut(specs.LinuxSyscall{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActKill})
	})
	if out := e.mustRun("sec-killt"); !strings.Contains(out, "status=159") {
		t.Errorf("KILL: %q, want mkdir killed by SIGSYS (status=159)", out)
	}
	if _, err := os.Stat(filepath.Join(e.bundle, "rootfs/tmp/x")); err == nil {
		t.Error("mkdir ran under SCMP_ACT_KILL")
	}
}

// TestSecArgs: argument conditions in the kernel: MASKED_EQ on the low
// word, GT on a 64-bit value (high word), two conditions (AND).
func TestSecArgs(t *testing.T) {
	e := secEnv(t, calls(
		call(nrPersonality, "0x108"), call(nrPersonality, "0xffffffff"),
		call(nrGetpgid, "0x100000000"), call(nrGetpgid, "0"),
		call(nrSysinfo, "5", "7"), call(nrSysinfo, "5", "8"),
	), func(s *specs.Spec) {
		s.Linux.Seccomp = allowAllBut(
			specs.LinuxSyscall{Names: []string{"personality"}, Action: specs.ActErrno, ErrnoRet: uintp(99),
				Args: []specs.LinuxSeccompArg{{Index: 0, Value: 0xff, ValueTwo: 0x08, Op: specs.OpMaskedEqual}}},
			specs.LinuxSyscall{Names: []string{"getpgid"}, Action: specs.ActErrno, ErrnoRet: uintp(55),
				Args: []specs.LinuxSeccompArg{{Index: 0, Value: 0xffffffff, Op: specs.OpGreaterThan}}},
			specs.LinuxSyscall{Names: []string{"sysinfo"}, Action: specs.ActErrno, ErrnoRet: uintp(44),
				Args: []specs.LinuxSeccompArg{{Index: 0, Value: 5, Op: specs.OpEqualTo}, {Index: 1, Value: 7, Op: specs.OpLessEqual}}},
		)
	})
	got := errnos(t, e.mustRun("sec-args"))
	// sysinfo(5, 8) is allowed and faults on the bad pointer: EFAULT.
	want := []string{"99", "0", "55", "0", "44", "14"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("errnos %v, want %v", got, want)
	}
}

// TestSecExec: a process exec'd into a running container is filtered by
// the container's profile too.
func TestSecExec(t *testing.T) {
	e := secEnv(t, []string{"sleep", "60"}, func(s *specs.Spec) {
		s.Linux.Seccomp = allowAllBut(specs.LinuxSyscall{Names: []string{"sysinfo"}, Action: specs.ActErrno, ErrnoRet: uintp(66)})
	})
	e.mustRuntime("run", "-d", "--bundle", e.bundle, "sec-exec")
	out := e.mustRuntime("exec", "sec-exec", "/bin/sysc", itoa(nrSysinfo), "0")
	if got := errnos(t, out); got[0] != "66" {
		t.Errorf("exec'd process: errno %s, want 66", got[0])
	}
	out = e.mustRuntime("exec", "sec-exec", "grep", "^Seccomp:", "/proc/self/status")
	if !strings.Contains(out, "2") {
		t.Errorf("exec'd process status %q", out)
	}
}

// TestSecFlags: TSYNC, LOG and SPEC_ALLOW reach seccomp(2) and the filter
// still works; an unknown flag is refused before anything runs.
func TestSecFlags(t *testing.T) {
	e := secEnv(t, calls(call(nrSysinfo, "0")), func(s *specs.Spec) {
		s.Linux.Seccomp = allowAllBut(specs.LinuxSyscall{Names: []string{"sysinfo"}, Action: specs.ActErrno, ErrnoRet: uintp(33)})
		s.Linux.Seccomp.Flags = []specs.LinuxSeccompFlag{"SECCOMP_FILTER_FLAG_TSYNC", specs.LinuxSeccompFlagLog, specs.LinuxSeccompFlagSpecAllow}
	})
	if got := errnos(t, e.mustRun("sec-flags")); got[0] != "33" {
		t.Errorf("errno %s, want 33", got[0])
	}
	e.spec.Linux.Seccomp.Flags = []specs.LinuxSeccompFlag{"SECCOMP_FILTER_FLAG_BOGUS"}
	e.writeSpec()
	if out, err := e.runtime("run", "--bundle", e.bundle, "sec-flags2"); err == nil || !strings.Contains(out, "BOGUS") {
		t.Errorf("unknown flag: %v %q", err, out)
	}
}

// TestSecCache: the compiled filter is stored under the runtime root,
// reused by the next create, and a corrupt entry is replaced.
func TestSecCache(t *testing.T) {
	e := secEnv(t, calls(call(nrSysinfo, "0")), func(s *specs.Spec) {
		s.Linux.Seccomp = allowAllBut(specs.LinuxSyscall{Names: []string{"sysinfo"}, Action: specs.ActErrno, ErrnoRet: uintp(22)})
	})
	dir := filepath.Join(e.root, "@cache/seccomp")
	e.mustRun("sec-cache1")
	ents, err := os.ReadDir(dir)
	if err != nil || len(ents) != 1 {
		t.Fatalf("cache dir %s: %v %v", dir, ents, err)
	}
	entry := filepath.Join(dir, ents[0].Name())
	st1, _ := os.Stat(entry)
	good, _ := os.ReadFile(entry)

	out, err := e.runtime("--debug", "run", "--bundle", e.bundle, "sec-cache2")
	if err != nil || !strings.Contains(out, "seccomp filter from cache") || !strings.Contains(out, "errno=22") {
		t.Fatalf("second run: %v %q", err, out)
	}
	if st2, _ := os.Stat(entry); !os.SameFile(st1, st2) {
		t.Error("cache entry rewritten on a hit")
	}

	// Corrupt: flip a byte in the program. The run recompiles, works, and
	// the entry is good again.
	bad := append([]byte(nil), good...)
	bad[len(bad)/2] ^= 0xff
	if err := os.WriteFile(entry, bad, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err = e.runtime("run", "--bundle", e.bundle, "sec-cache3")
	if err != nil || !strings.Contains(out, "corrupt") || !strings.Contains(out, "errno=22") {
		t.Fatalf("run with a corrupt entry: %v %q", err, out)
	}
	if b, _ := os.ReadFile(entry); string(b) != string(good) {
		t.Error("corrupt cache entry not replaced")
	}
	// Garbage of another size too.
	os.WriteFile(entry, []byte("not a filter"), 0o600)
	if out, err := e.runtime("run", "--bundle", e.bundle, "sec-cache4"); err != nil || !strings.Contains(out, "errno=22") {
		t.Fatalf("run with a garbage entry: %v %q", err, out)
	}
}

// TestSecWithoutNoNewPrivs: without noNewPrivileges the filter goes in
// while the init still holds CAP_SYS_ADMIN (seccomp(2) needs it then),
// and the process still drops to its user. A profile denying what the
// runtime itself uses late (getcwd for its cwd check, close_range) does
// not stop the container.
func TestSecWithoutNoNewPrivs(t *testing.T) {
	const nrGetcwd, nrCloseRange = 79, 436
	e := secEnv(t, calls(call(nrSysinfo, "0"), call(nrGetcwd, "0", "0"), call(nrCloseRange, "100", "200", "0")), func(s *specs.Spec) {
		s.Process.NoNewPrivileges = false
		s.Process.User = specs.User{UID: 1000, GID: 1000}
		s.Process.Cwd = "/tmp"
		s.Linux.Seccomp = allowAllBut(
			specs.LinuxSyscall{Names: []string{"sysinfo"}, Action: specs.ActErrno, ErrnoRet: uintp(31)},
			specs.LinuxSyscall{Names: []string{"getcwd", "close_range"}, Action: specs.ActErrno})
	})
	if got := errnos(t, e.mustRun("sec-nnp-off")); strings.Join(got, " ") != "31 1 1" {
		t.Errorf("errnos %v, want [31 1 1]", got)
	}
	e.spec.Process.Args = []string{"grep", "-E", "^(Uid|NoNewPrivs|Seccomp|CapEff):", "/proc/self/status"}
	e.writeSpec()
	out := e.mustRun("sec-nnp-off2")
	for _, want := range []string{"NoNewPrivs:\t0", "Seccomp:\t2", "Uid:\t1000\t1000\t1000\t1000", "CapEff:\t0000000000000000"} {
		if !strings.Contains(out, want) {
			t.Errorf("status %q lacks %q", out, want)
		}
	}
}

// TestSecActions: LOG lets the call run, TRACE without a tracer fails it
// with ENOSYS, TRAP sends SIGSYS (which kills busybox, having no handler).
func TestSecActions(t *testing.T) {
	const nrGetppid = 110
	e := secEnv(t, calls(call(nrGetpgid, "0"), call(nrGetppid)), func(s *specs.Spec) {
		s.Linux.Seccomp = allowAllBut(
			specs.LinuxSyscall{Names: []string{"getpgid"}, Action: specs.ActLog},
			specs.LinuxSyscall{Names: []string{"getppid"}, Action: specs.ActTrace})
	})
	if got := errnos(t, e.mustRun("sec-actions")); strings.Join(got, " ") != "0 38" {
		t.Errorf("LOG, TRACE: errnos %v, want [0 38]", got)
	}
	e = newEnv(t, []string{"sh", "-c", "mkdir /tmp/y; echo status=$?"}, func(s *specs.Spec) {
		s.Linux.Seccomp = allowAllBut(specs.LinuxSyscall{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActTrap})
	})
	if out := e.mustRun("sec-trap"); !strings.Contains(out, "status=159") {
		t.Errorf("TRAP: %q, want mkdir killed by SIGSYS (status=159)", out)
	}
}

// TestSecSpec: `cove-runc spec` writes the default profile.
func TestSecSpec(t *testing.T) {
	e := newEnv(t, []string{"true"}, nil)
	dir := t.TempDir()
	e.mustRuntime("spec", "--bundle", dir)
	b, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var s specs.Spec
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	sc := s.Linux.Seccomp
	if sc == nil || sc.DefaultAction != specs.ActErrno || sc.DefaultErrnoRet == nil || *sc.DefaultErrnoRet != 1 ||
		len(sc.Architectures) != 3 || len(sc.Syscalls) == 0 || len(sc.Syscalls[0].Names) < 340 {
		t.Fatalf("spec seccomp: %s", b)
	}
	clone3 := false
	for _, r := range sc.Syscalls {
		for _, n := range r.Names {
			if n == "clone3" && r.Action == specs.ActErrno && r.ErrnoRet != nil && *r.ErrnoRet == 38 {
				clone3 = true
			}
			if n == "keyctl" || n == "add_key" || n == "userfaultfd" || n == "bpf" || strings.HasPrefix(n, "io_uring") {
				t.Errorf("default profile allows %s", n)
			}
		}
	}
	if !clone3 {
		t.Error("default profile lacks clone3 -> ENOSYS")
	}
}
