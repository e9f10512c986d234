package seccomp

import (
	"encoding/json"
	"math/rand"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func uintp(v uint) *uint { return &v }

func nr(t testing.TB, arch, name string) uint32 {
	t.Helper()
	n, ok := SyscallNumber(arch, name)
	if !ok {
		t.Fatalf("no syscall %s on %s", name, arch)
	}
	return n
}

func mustCompile(t testing.TB, s *specs.LinuxSeccomp) *Filter {
	t.Helper()
	f, err := Compile(s)
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	if err := f.Program.Validate(); err != nil {
		t.Fatalf("compiled program invalid: %v", err)
	}
	return f
}

func verdict(t testing.TB, p Program, c call) uint32 {
	t.Helper()
	v, err := run(p, &c)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

const (
	x64  = auditArchX86_64
	i386 = auditArchI386
)

// TestTables: numbers from the generated tables match the kernel ABI.
func TestTables(t *testing.T) {
	for _, c := range []struct {
		arch, name string
		nr         uint32
	}{
		{"SCMP_ARCH_X86_64", "read", 0}, {"SCMP_ARCH_X86_64", "clone3", 435},
		{"SCMP_ARCH_X86_64", "socket", 41}, {"SCMP_ARCH_X86", "socketcall", 102},
		{"SCMP_ARCH_X86", "read", 3}, {"SCMP_ARCH_X32", "read", x32Bit},
		{"SCMP_ARCH_X32", "execve", x32Bit | 520},
	} {
		if got := nr(t, c.arch, c.name); got != c.nr {
			t.Errorf("%s %s = %d, want %d", c.arch, c.name, got, c.nr)
		}
	}
	if _, ok := SyscallNumber("SCMP_ARCH_X86_64", "nosuchcall"); ok {
		t.Error("unknown name found")
	}
}

// TestVerdicts checks compiled filters against verdicts written out by
// hand.
func TestVerdicts(t *testing.T) {
	arches3 := []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32}
	prof := &specs.LinuxSeccomp{
		DefaultAction:   specs.ActErrno,
		DefaultErrnoRet: uintp(13),
		Architectures:   arches3,
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"read", "write", "nosuchcall"}, Action: specs.ActAllow},
			{Names: []string{"getpid"}, Action: specs.ActKillProcess},
			{Names: []string{"gettid"}, Action: specs.ActKill},
			{Names: []string{"getppid"}, Action: specs.ActKillThread},
			{Names: []string{"getuid"}, Action: specs.ActTrap},
			{Names: []string{"getgid"}, Action: specs.ActTrace, ErrnoRet: uintp(7)},
			{Names: []string{"geteuid"}, Action: specs.ActLog},
			{Names: []string{"getegid"}, Action: specs.ActErrno, ErrnoRet: uintp(99)},
			{Names: []string{"getpgrp"}, Action: specs.ActErrno},
			// Conditional before unconditional, whatever the order.
			{Names: []string{"personality"}, Action: specs.ActAllow},
			{Names: []string{"personality"}, Action: specs.ActErrno, ErrnoRet: uintp(5),
				Args: []specs.LinuxSeccompArg{{Index: 0, Value: 0xff, ValueTwo: 0x08, Op: specs.OpMaskedEqual}}},
			// AND of two conditions.
			{Names: []string{"socket"}, Action: specs.ActAllow,
				Args: []specs.LinuxSeccompArg{{Index: 0, Value: 1, Op: specs.OpEqualTo}, {Index: 1, Value: 3, Op: specs.OpLessThan}}},
			// 64-bit comparisons split into words.
			{Names: []string{"mmap"}, Action: specs.ActErrno, ErrnoRet: uintp(21),
				Args: []specs.LinuxSeccompArg{{Index: 5, Value: 0x1_0000_0000, Op: specs.OpGreaterEqual}}},
			{Names: []string{"mmap"}, Action: specs.ActAllow},
		},
	}
	f := mustCompile(t, prof)
	if len(f.Notes) != 1 || !strings.Contains(f.Notes[0], "nosuchcall") {
		t.Errorf("notes %q, want the unknown name", f.Notes)
	}
	n := func(name string) uint32 { return nr(t, "SCMP_ARCH_X86_64", name) }
	args := func(a ...uint64) (r [6]uint64) { copy(r[:], a); return }
	cases := []struct {
		name string
		c    call
		want uint32
	}{
		{"read", call{x64, n("read"), args()}, retAllow},
		{"default errnoRet", call{x64, n("getcwd"), args()}, retErrno | 13},
		{"kill process", call{x64, n("getpid"), args()}, retKillProcess},
		{"kill", call{x64, n("gettid"), args()}, retKillThread},
		{"kill thread", call{x64, n("getppid"), args()}, retKillThread},
		{"trap", call{x64, n("getuid"), args()}, retTrap},
		{"trace", call{x64, n("getgid"), args()}, retTrace | 7},
		{"log", call{x64, n("geteuid"), args()}, retLog},
		{"errnoRet", call{x64, n("getegid"), args()}, retErrno | 99},
		{"errno default EPERM", call{x64, n("getpgrp"), args()}, retErrno | 1},
		{"personality masked match", call{x64, n("personality"), args(0x1208)}, retErrno | 5},
		{"personality masked high word ignored", call{x64, n("personality"), args(0xffff_0000_0000_0008)}, retErrno | 5},
		{"personality masked miss", call{x64, n("personality"), args(0x1209)}, retAllow},
		{"socket AND both", call{x64, n("socket"), args(1, 2)}, retAllow},
		{"socket AND one", call{x64, n("socket"), args(1, 3)}, retErrno | 13},
		{"socket AND high word", call{x64, n("socket"), args(1|1<<32, 2)}, retErrno | 13},
		{"mmap GE high word", call{x64, n("mmap"), args(0, 0, 0, 0, 0, 0x1_0000_0000)}, retErrno | 21},
		{"mmap GE below", call{x64, n("mmap"), args(0, 0, 0, 0, 0, 0xffff_ffff)}, retAllow},
		{"unknown high nr", call{x64, 1000, args()}, retErrno | errnoENOSYS},
		{"highest known nr", call{x64, tableX86_64.max, args()}, retErrno | 13},
		{"i386 read", call{i386, nr(t, "SCMP_ARCH_X86", "read"), args()}, retAllow},
		{"i386 getpid", call{i386, nr(t, "SCMP_ARCH_X86", "getpid"), args()}, retKillProcess},
		{"i386 unknown", call{i386, 999, args()}, retErrno | errnoENOSYS},
		{"i386 mmap has no 64-bit arg", call{i386, nr(t, "SCMP_ARCH_X86", "mmap"), args(0, 0, 0, 0, 0, 0x1_0000_0000)}, retAllow},
		{"x32 read", call{x64, x32Bit, args()}, retAllow},
		{"x32 unknown", call{x64, x32Bit | 999, args()}, retErrno | errnoENOSYS},
		{"foreign arch", call{0xc00000b7, 0, args()}, retKillProcess},
	}
	for _, c := range cases {
		if got := verdict(t, f.Program, c.c); got != c.want {
			t.Errorf("%s: %#x, want %#x", c.name, got, c.want)
		}
		if got := expect(prof, &c.c); got != c.want {
			t.Errorf("%s: reference evaluator says %#x, want %#x", c.name, got, c.want)
		}
	}
}

// TestArchitectures: what is not listed is killed; x32 syscalls are told
// apart from x86_64 ones by their bit.
func TestArchitectures(t *testing.T) {
	only64 := mustCompile(t, &specs.LinuxSeccomp{DefaultAction: specs.ActAllow})
	for _, c := range []struct {
		name string
		c    call
		want uint32
	}{
		{"x86_64", call{arch: x64, nr: 0}, retAllow},
		{"i386 not listed", call{arch: i386, nr: 3}, retKillProcess},
		{"x32 not listed", call{arch: x64, nr: x32Bit}, retKillProcess},
		{"allow default: no ENOSYS", call{arch: x64, nr: 1000}, retAllow},
	} {
		if got := verdict(t, only64.Program, c.c); got != c.want {
			t.Errorf("%s: %#x, want %#x", c.name, got, c.want)
		}
	}
	onlyX32 := mustCompile(t, &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Architectures: []specs.Arch{specs.ArchX32, specs.ArchAARCH64}})
	if got := verdict(t, onlyX32.Program, call{arch: x64, nr: 0}); got != retKillProcess {
		t.Errorf("x86_64 syscall with only x32 listed: %#x", got)
	}
	if got := verdict(t, onlyX32.Program, call{arch: x64, nr: x32Bit}); got != retAllow {
		t.Errorf("x32 syscall with x32 listed: %#x", got)
	}
}

// TestOperators compares every operator at the boundaries of both words
// with the reference evaluator.
func TestOperators(t *testing.T) {
	ops := []specs.LinuxSeccompOperator{specs.OpNotEqual, specs.OpLessThan, specs.OpLessEqual,
		specs.OpEqualTo, specs.OpGreaterEqual, specs.OpGreaterThan, specs.OpMaskedEqual}
	values := []uint64{0, 1, 0xffffffff, 0x1_0000_0000, 0x1_0000_0001, 0xffff_ffff_ffff_ffff, 0x8000_0000_0000_0000, 0x7fff_ffff_ffff_ffff}
	for _, op := range ops {
		for _, v := range values {
			prof := &specs.LinuxSeccomp{
				DefaultAction: specs.ActAllow,
				Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchX86},
				Syscalls: []specs.LinuxSyscall{{Names: []string{"ioctl"}, Action: specs.ActErrno,
					Args: []specs.LinuxSeccompArg{{Index: 2, Value: v, ValueTwo: v & 0xf0f0_f0f0_f0f0_f0f0, Op: op}}}},
			}
			f := mustCompile(t, prof)
			for _, a := range values {
				for _, d := range []int64{-1, 0, 1} {
					arg := a + uint64(d)
					for _, c := range []call{
						{arch: x64, nr: nr(t, "SCMP_ARCH_X86_64", "ioctl"), args: [6]uint64{0, 0, arg}},
						{arch: i386, nr: nr(t, "SCMP_ARCH_X86", "ioctl"), args: [6]uint64{0, 0, arg}},
					} {
						if got, want := verdict(t, f.Program, c), expect(prof, &c); got != want {
							t.Errorf("%s %#x, arch %#x arg %#x: %#x, want %#x", op, v, c.arch, arg, got, want)
						}
					}
				}
			}
		}
	}
}

// TestFarJumps: a profile big enough for jumps beyond 255 instructions
// still gives the right verdicts.
func TestFarJumps(t *testing.T) {
	prof := &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchX86}}
	for i := uint64(0); i < 120; i++ {
		prof.Syscalls = append(prof.Syscalls, specs.LinuxSyscall{Names: []string{"ioctl", "fcntl"}, Action: specs.ActAllow,
			Args: []specs.LinuxSeccompArg{{Index: 1, Value: i * 3, Op: specs.OpEqualTo}}})
	}
	prof.Syscalls = append(prof.Syscalls, DefaultProfile(nil).Syscalls...)
	f := mustCompile(t, prof)
	far := false
	for _, in := range f.Program {
		if in.Code == opJA && in.K > 255 {
			far = true
		}
	}
	if !far {
		t.Fatalf("no jump beyond 255 in %d instructions: test does not test", len(f.Program))
	}
	r := rand.New(rand.NewSource(1))
	for i := 0; i < 20000; i++ {
		c := randomCall(r)
		if got, want := verdict(t, f.Program, c), expect(prof, &c); got != want {
			t.Fatalf("%+v: %#x, want %#x", c, got, want)
		}
	}
}

func randomCall(r *rand.Rand) call {
	c := call{arch: []uint32{x64, x64, i386, 0x40000028}[r.Intn(4)]}
	switch r.Intn(4) {
	case 0:
		c.nr = uint32(r.Intn(500))
	case 1:
		c.nr = x32Bit | uint32(r.Intn(600))
	case 2:
		c.nr = []uint32{16, 72, 54, 221, 41, 56, 135}[r.Intn(7)]
	default:
		c.nr = r.Uint32()
	}
	for i := range c.args {
		switch r.Intn(3) {
		case 0:
			c.args[i] = uint64(r.Intn(400))
		case 1:
			c.args[i] = r.Uint64()
		default:
			c.args[i] = uint64(r.Uint32())
		}
	}
	return c
}

// TestDefaultProfile: Docker's semantics, by capability.
func TestDefaultProfile(t *testing.T) {
	p := DefaultProfile([]string{"CAP_KILL"})
	if n := len(p.Syscalls[0].Names); n < 340 || n > 380 {
		t.Errorf("%d syscalls allowed outright, want about 360", n)
	}
	f := mustCompile(t, p)
	admin := mustCompile(t, DefaultProfile([]string{"CAP_SYS_ADMIN", "CAP_SYS_PTRACE"}))
	n := func(name string) uint32 { return nr(t, "SCMP_ARCH_X86_64", name) }
	const newuser, thread = 0x10000000, 0x10000 | 0x100 | 0x800 | 0x200 | 0x400
	for _, c := range []struct {
		name        string
		c           call
		want, admin uint32
	}{
		{"read", call{x64, n("read"), [6]uint64{}}, retAllow, retAllow},
		{"clone thread", call{x64, n("clone"), [6]uint64{thread}}, retAllow, retAllow},
		{"clone newuser", call{x64, n("clone"), [6]uint64{newuser}}, retErrno | 1, retAllow},
		{"clone3", call{x64, n("clone3"), [6]uint64{}}, retErrno | errnoENOSYS, retAllow},
		{"unshare", call{x64, n("unshare"), [6]uint64{}}, retErrno | 1, retAllow},
		{"mount", call{x64, n("mount"), [6]uint64{}}, retErrno | 1, retAllow},
		{"keyctl", call{x64, n("keyctl"), [6]uint64{}}, retErrno | 1, retErrno | 1},
		{"add_key", call{x64, n("add_key"), [6]uint64{}}, retErrno | 1, retErrno | 1},
		{"request_key", call{x64, n("request_key"), [6]uint64{}}, retErrno | 1, retErrno | 1},
		{"io_uring_setup", call{x64, n("io_uring_setup"), [6]uint64{}}, retErrno | 1, retErrno | 1},
		{"kexec_load", call{x64, n("kexec_load"), [6]uint64{}}, retErrno | 1, retErrno | 1},
		{"userfaultfd", call{x64, n("userfaultfd"), [6]uint64{}}, retErrno | 1, retAllow},
		{"bpf", call{x64, n("bpf"), [6]uint64{}}, retErrno | 1, retAllow},
		{"perf_event_open", call{x64, n("perf_event_open"), [6]uint64{}}, retErrno | 1, retAllow},
		{"socket inet", call{x64, n("socket"), [6]uint64{2, 1}}, retAllow, retAllow},
		{"socket alg", call{x64, n("socket"), [6]uint64{38, 5}}, retErrno | 1, retErrno | 1},
		{"socket vsock", call{x64, n("socket"), [6]uint64{40, 1}}, retErrno | 1, retErrno | 1},
		{"personality query", call{x64, n("personality"), [6]uint64{0xffffffff}}, retAllow, retAllow},
		{"personality other", call{x64, n("personality"), [6]uint64{0x0400000}}, retErrno | 1, retErrno | 1},
		{"new syscall", call{x64, 470, [6]uint64{}}, retErrno | errnoENOSYS, retErrno | errnoENOSYS},
		{"i386 socketcall", call{i386, 102, [6]uint64{}}, retAllow, retAllow},
		{"x32 read", call{x64, x32Bit, [6]uint64{}}, retAllow, retAllow},
	} {
		if got := verdict(t, f.Program, c.c); got != c.want {
			t.Errorf("%s: %#x, want %#x", c.name, got, c.want)
		}
		if got := verdict(t, admin.Program, c.c); got != c.admin {
			t.Errorf("%s with CAP_SYS_ADMIN: %#x, want %#x", c.name, got, c.admin)
		}
	}
}

// TestRandomProfiles: random profiles agree with the reference evaluator
// on random calls.
func TestRandomProfiles(t *testing.T) {
	r := rand.New(rand.NewSource(2))
	for i := 0; i < 200; i++ {
		prof := randomProfile(r)
		f, err := Compile(prof)
		if err != nil {
			t.Fatalf("profile %d: %v", i, err)
		}
		for j := 0; j < 300; j++ {
			c := randomCall(r)
			if got, want := verdict(t, f.Program, c), expect(prof, &c); got != want {
				b, _ := json.Marshal(prof)
				t.Fatalf("profile %s\ncall %+v: %#x, want %#x", b, c, got, want)
			}
		}
	}
}

var (
	someNames = []string{"read", "write", "ioctl", "fcntl", "mmap", "socket", "clone", "personality",
		"getpid", "socketcall", "execveat", "rt_sigreturn", "chown32", "openat", "statx"}
	someActions = []specs.LinuxSeccompAction{specs.ActAllow, specs.ActErrno, specs.ActKill,
		specs.ActKillProcess, specs.ActTrap, specs.ActTrace, specs.ActLog}
	someOps = []specs.LinuxSeccompOperator{specs.OpNotEqual, specs.OpLessThan, specs.OpLessEqual,
		specs.OpEqualTo, specs.OpGreaterEqual, specs.OpGreaterThan, specs.OpMaskedEqual}
)

func randomProfile(r *rand.Rand) *specs.LinuxSeccomp {
	p := &specs.LinuxSeccomp{DefaultAction: someActions[r.Intn(len(someActions))]}
	for _, a := range []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32} {
		if r.Intn(2) == 0 {
			p.Architectures = append(p.Architectures, a)
		}
	}
	for i := r.Intn(12); i > 0; i-- {
		sc := specs.LinuxSyscall{Action: someActions[r.Intn(len(someActions))]}
		for j := 1 + r.Intn(3); j > 0; j-- {
			sc.Names = append(sc.Names, someNames[r.Intn(len(someNames))])
		}
		if sc.Action == specs.ActErrno && r.Intn(2) == 0 {
			sc.ErrnoRet = uintp(uint(r.Intn(4096)))
		}
		for j := r.Intn(3); j > 0; j-- {
			v := []uint64{0, 1, 3, 0xffffffff, 1 << 32, r.Uint64(), uint64(r.Intn(400))}[r.Intn(7)]
			sc.Args = append(sc.Args, specs.LinuxSeccompArg{Index: uint(r.Intn(6)), Value: v,
				ValueTwo: v & r.Uint64(), Op: someOps[r.Intn(len(someOps))]})
		}
		p.Syscalls = append(p.Syscalls, sc)
	}
	return p
}

// TestErrors: bad profiles are refused with a message naming the problem.
func TestErrors(t *testing.T) {
	ok := func() *specs.LinuxSeccomp {
		return &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActAllow}}}
	}
	for _, c := range []struct {
		name, want string
		edit       func(*specs.LinuxSeccomp)
	}{
		{"no default action", "empty", func(s *specs.LinuxSeccomp) { s.DefaultAction = "" }},
		{"unknown action", "SCMP_ACT_BOGUS", func(s *specs.LinuxSeccomp) { s.Syscalls[0].Action = "SCMP_ACT_BOGUS" }},
		{"errnoRet on allow", "errnoRet", func(s *specs.LinuxSeccomp) { s.Syscalls[0].ErrnoRet = uintp(3) }},
		{"errnoRet too big", "4095", func(s *specs.LinuxSeccomp) { s.DefaultErrnoRet = uintp(70000) }},
		{"unknown op", "SCMP_CMP_BOGUS", func(s *specs.LinuxSeccomp) {
			s.Syscalls[0].Args = []specs.LinuxSeccompArg{{Op: "SCMP_CMP_BOGUS"}}
		}},
		{"arg index", "index 6", func(s *specs.LinuxSeccomp) {
			s.Syscalls[0].Args = []specs.LinuxSeccompArg{{Index: 6, Op: specs.OpEqualTo}}
		}},
		{"no names", "no names", func(s *specs.LinuxSeccomp) { s.Syscalls[0].Names = nil }},
		{"unknown arch", "SCMP_ARCH_VAX", func(s *specs.LinuxSeccomp) { s.Architectures = []specs.Arch{"SCMP_ARCH_VAX"} }},
		{"unknown flag", "SECCOMP_FILTER_FLAG_BOGUS", func(s *specs.LinuxSeccomp) { s.Flags = []specs.LinuxSeccompFlag{"SECCOMP_FILTER_FLAG_BOGUS"} }},
		{"notify without listener", "listenerPath", func(s *specs.LinuxSeccomp) { s.Syscalls[0].Action = specs.ActNotify }},
		{"notify write", "write", func(s *specs.LinuxSeccomp) {
			s.ListenerPath = "/x"
			s.Syscalls = append(s.Syscalls, specs.LinuxSyscall{Names: []string{"write"}, Action: specs.ActNotify})
		}},
		{"notify default over write", "write", func(s *specs.LinuxSeccomp) {
			s.ListenerPath = "/x"
			s.DefaultAction = specs.ActNotify
		}},
	} {
		s := ok()
		c.edit(s)
		_, err := Compile(s)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one containing %q", c.name, err, c.want)
		}
	}
	if _, err := Compile(nil); err == nil {
		t.Error("nil profile compiled")
	}
}

// TestFlagsAndNotify: flags map to seccomp(2) bits; NOTIFY asks for a
// listener, and TSYNC with it gets TSYNC_ESRCH.
func TestFlagsAndNotify(t *testing.T) {
	f := mustCompile(t, &specs.LinuxSeccomp{DefaultAction: specs.ActAllow,
		Flags: []specs.LinuxSeccompFlag{"SECCOMP_FILTER_FLAG_TSYNC", specs.LinuxSeccompFlagLog, specs.LinuxSeccompFlagSpecAllow}})
	if f.Flags != FlagTSync|FlagLog|FlagSpecAllow || f.Notify {
		t.Errorf("flags %#x notify %v", f.Flags, f.Notify)
	}
	f = mustCompile(t, &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, ListenerPath: "/run/l.sock",
		Flags:    []specs.LinuxSeccompFlag{"SECCOMP_FILTER_FLAG_TSYNC"},
		Syscalls: []specs.LinuxSyscall{{Names: []string{"mkdir"}, Action: specs.ActNotify}}})
	if !f.Notify || f.Flags != FlagTSync|FlagTSyncESRCH {
		t.Errorf("notify: flags %#x notify %v", f.Flags, f.Notify)
	}
	if got := verdict(t, f.Program, call{arch: x64, nr: nr(t, "SCMP_ARCH_X86_64", "mkdir")}); got != retUserNotif {
		t.Errorf("mkdir: %#x, want USER_NOTIF", got)
	}
}

// TestProgramEncoding: JSON and binary forms round-trip, and decoding
// validates.
func TestProgramEncoding(t *testing.T) {
	f := mustCompile(t, DefaultProfile(nil))
	b, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	var g Filter
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	if len(g.Program) != len(f.Program) || g.Program[17] != f.Program[17] {
		t.Fatal("program changed in a JSON round trip")
	}
	bad := Program{{Code: opJEQ, Jt: 5}, {Code: opRet}}
	raw, _ := bad.MarshalBinary()
	var p Program
	if err := p.UnmarshalBinary(raw); err == nil {
		t.Error("jump past the end decoded")
	}
	if err := (Program{{Code: opLoad, K: 64}, {Code: opRet}}).Validate(); err == nil {
		t.Error("load outside seccomp_data validated")
	}
	if err := (Program{{Code: opLoad}}).Validate(); err == nil {
		t.Error("program without a final return validated")
	}
	if err := (Program{{Code: 0x61}, {Code: opRet}}).Validate(); err == nil {
		t.Error("unknown opcode validated")
	}
}

// TestDeterministic: the same profile compiles to the same program (the
// cache and its key depend on it).
func TestDeterministic(t *testing.T) {
	a, _ := mustCompile(t, DefaultProfile(nil)).Program.MarshalBinary()
	for i := 0; i < 5; i++ {
		b, _ := mustCompile(t, DefaultProfile(nil)).Program.MarshalBinary()
		if string(a) != string(b) {
			t.Fatal("two compiles of one profile differ")
		}
	}
}
