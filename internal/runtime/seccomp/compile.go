package seccomp

import (
	"errors"
	"fmt"
	"sort"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Seccomp return values (linux/seccomp.h).
const (
	retKillProcess = 0x80000000
	retKillThread  = 0x00000000
	retTrap        = 0x00030000
	retErrno       = 0x00050000
	retUserNotif   = 0x7fc00000
	retTrace       = 0x7ff00000
	retLog         = 0x7ffc0000
	retAllow       = 0x7fff0000

	errnoEPERM  = 1
	errnoENOSYS = 38
	// maxErrno is the kernel's MAX_ERRNO: larger ERRNO data is clamped.
	maxErrno = 4095
)

// Flags for seccomp(2) (linux/seccomp.h).
const (
	FlagTSync            = 1 << 0
	FlagLog              = 1 << 1
	FlagSpecAllow        = 1 << 2
	FlagNewListener      = 1 << 3
	FlagTSyncESRCH       = 1 << 4
	FlagWaitKillableRecv = 1 << 5
)

var flagValues = map[specs.LinuxSeccompFlag]uint{
	"SECCOMP_FILTER_FLAG_TSYNC":            FlagTSync,
	specs.LinuxSeccompFlagLog:              FlagLog,
	specs.LinuxSeccompFlagSpecAllow:        FlagSpecAllow,
	specs.LinuxSeccompFlagWaitKillableRecv: FlagWaitKillableRecv,
}

// Offsets in struct seccomp_data.
const (
	offNr   = 0
	offArch = 4
	offArgs = 16
)

// Filter is a compiled profile, ready for seccomp(2).
type Filter struct {
	Program Program `json:"program"`
	// Flags are the SECCOMP_FILTER_FLAG_* values the profile asks for.
	Flags uint `json:"flags,omitempty"`
	// Notify is set when some action is SCMP_ACT_NOTIFY: the filter is
	// installed with SECCOMP_FILTER_FLAG_NEW_LISTENER and the listener fd
	// goes to the profile's listenerPath.
	Notify bool `json:"notify,omitempty"`
	// Notes says what the compiler skipped: syscall names no listed
	// architecture knows, architectures no x86_64 kernel presents.
	Notes []string `json:"-"`
}

// rule is one syscall rule resolved for one architecture.
type rule struct {
	action uint32
	args   []specs.LinuxSeccompArg
}

// Compile turns a runtime-spec seccomp profile into a classic BPF program
// for an x86_64 kernel.
//
// Semantics, where the runtime-spec leaves them open:
//   - architectures: SCMP_ARCH_X86_64, SCMP_ARCH_X86 and SCMP_ARCH_X32 get a
//     section each; an empty list means x86_64 only. Other runtime-spec
//     architectures are skipped (no x86_64 kernel presents them). A syscall
//     made under an architecture not in the list (a 32-bit program when
//     only x86_64 is listed, an x32 syscall when x32 is not) kills the
//     process, as libseccomp's default bad-architecture action does.
//   - syscall names that no listed architecture knows are skipped (profiles
//     name syscalls newer than the tables); Notes lists them.
//   - syscall numbers above the highest the tables know for an
//     architecture return ENOSYS when the default action denies (ERRNO,
//     KILL*, TRAP), so that libc falls back to older calls, as runc's
//     patched filters do.
//   - several rules for one syscall: rules with argument conditions are
//     tried first, in profile order, and the first whose conditions all
//     hold (AND, also for several conditions on one argument) decides;
//     then the first rule without conditions; then the default action.
//   - argument comparisons are unsigned and 64-bit; for SCMP_ARCH_X86,
//     whose arguments are 32-bit, the high word is taken as zero.
func Compile(s *specs.LinuxSeccomp) (*Filter, error) {
	if s == nil {
		return nil, errors.New("seccomp: no profile")
	}
	f := &Filter{}
	def, notify, err := action(s.DefaultAction, s.DefaultErrnoRet)
	if err != nil {
		return nil, fmt.Errorf("seccomp defaultAction: %w", err)
	}
	f.Notify = notify
	for _, fl := range s.Flags {
		v, ok := flagValues[fl]
		if !ok {
			return nil, fmt.Errorf("seccomp flags: unknown flag %q", fl)
		}
		f.Flags |= v
	}

	// Architectures, in a fixed order whatever the profile's.
	want := map[string]bool{}
	for _, a := range s.Architectures {
		switch {
		case arches[string(a)] != nil:
			want[string(a)] = true
		case foreignArches[string(a)]:
			f.Notes = append(f.Notes, fmt.Sprintf("architecture %s skipped: not an x86_64 one", a))
		default:
			return nil, fmt.Errorf("seccomp architectures: unknown architecture %q", a)
		}
	}
	if len(want) == 0 {
		want["SCMP_ARCH_X86_64"] = true
	}
	var list []*archInfo
	for _, name := range []string{"SCMP_ARCH_X86_64", "SCMP_ARCH_X32", "SCMP_ARCH_X86"} {
		if want[name] {
			list = append(list, arches[name])
		}
	}

	// Rules per architecture and syscall number, checked once.
	rules := make([]map[uint32][]rule, len(list))
	for i := range rules {
		rules[i] = map[uint32][]rule{}
	}
	for i, sc := range s.Syscalls {
		act, n, err := action(sc.Action, sc.ErrnoRet)
		if err != nil {
			return nil, fmt.Errorf("seccomp syscalls[%d]: %w", i, err)
		}
		f.Notify = f.Notify || n
		for _, a := range sc.Args {
			if err := checkArg(a); err != nil {
				return nil, fmt.Errorf("seccomp syscalls[%d]: %w", i, err)
			}
		}
		if len(sc.Names) == 0 {
			return nil, fmt.Errorf("seccomp syscalls[%d]: no names", i)
		}
		for _, name := range sc.Names {
			if n && name == "write" {
				// The init reports the listener fd with write(2): it
				// would wait on a listener that has no fd yet.
				return nil, errors.New("seccomp: SCMP_ACT_NOTIFY cannot be used for write")
			}
			known := false
			for j, a := range list {
				nr, ok := a.table.lookup(name)
				if !ok {
					continue
				}
				known = true
				nr |= a.nrBits
				rules[j][nr] = append(rules[j][nr], rule{action: act, args: sc.Args})
			}
			if !known {
				f.Notes = append(f.Notes, fmt.Sprintf("syscall %q skipped: unknown on the listed architectures", name))
			}
		}
	}
	if notify {
		for j, a := range list {
			nr, _ := a.table.lookup("write")
			if resolveUnconditional(rules[j][nr|a.nrBits], def) == retUserNotif {
				return nil, errors.New("seccomp: SCMP_ACT_NOTIFY as defaultAction needs write allowed (the init reports the listener fd with it)")
			}
		}
	}
	if f.Notify && s.ListenerPath == "" {
		return nil, errors.New("seccomp: SCMP_ACT_NOTIFY needs listenerPath")
	}
	if f.Notify && f.Flags&FlagTSync != 0 {
		// TSYNC and NEW_LISTENER together only with TSYNC_ESRCH.
		f.Flags |= FlagTSyncESRCH
	}

	c := &compiler{def: def, enosys: denies(def)}
	if f.Program, err = c.program(list, rules); err != nil {
		return nil, err
	}
	return f, nil
}

// resolveUnconditional is the action a syscall without matching
// conditions gets.
func resolveUnconditional(rs []rule, def uint32) uint32 {
	for _, r := range rs {
		if len(r.args) == 0 {
			return r.action
		}
	}
	return def
}

// denies reports whether an action refuses the syscall: only then do
// unknown syscalls get ENOSYS instead.
func denies(act uint32) bool {
	switch act & 0xffff0000 {
	case retKillProcess, retKillThread, retTrap, retErrno:
		return true
	}
	return false
}

// action returns the SECCOMP_RET_* value of a runtime-spec action, and
// whether it is SCMP_ACT_NOTIFY.
func action(a specs.LinuxSeccompAction, errnoRet *uint) (uint32, bool, error) {
	data := uint(errnoEPERM)
	if errnoRet != nil {
		if a != specs.ActErrno && a != specs.ActTrace {
			return 0, false, fmt.Errorf("errnoRet is only for SCMP_ACT_ERRNO and SCMP_ACT_TRACE, not %s", a)
		}
		if *errnoRet > maxErrno {
			return 0, false, fmt.Errorf("errnoRet %d is above %d", *errnoRet, maxErrno)
		}
		data = *errnoRet
	}
	switch a {
	case specs.ActKill, specs.ActKillThread:
		return retKillThread, false, nil
	case specs.ActKillProcess:
		return retKillProcess, false, nil
	case specs.ActTrap:
		return retTrap, false, nil
	case specs.ActErrno:
		return retErrno | uint32(data), false, nil
	case specs.ActTrace:
		return retTrace | uint32(data), false, nil
	case specs.ActAllow:
		return retAllow, false, nil
	case specs.ActLog:
		return retLog, false, nil
	case specs.ActNotify:
		return retUserNotif, true, nil
	case "":
		return 0, false, errors.New("action is empty")
	}
	return 0, false, fmt.Errorf("unknown action %q", a)
}

func checkArg(a specs.LinuxSeccompArg) error {
	if a.Index > 5 {
		return fmt.Errorf("argument index %d: syscalls have 6 arguments (0-5)", a.Index)
	}
	switch a.Op {
	case specs.OpNotEqual, specs.OpLessThan, specs.OpLessEqual, specs.OpEqualTo,
		specs.OpGreaterEqual, specs.OpGreaterThan, specs.OpMaskedEqual:
		return nil
	}
	return fmt.Errorf("argument %d: unknown operator %q", a.Index, a.Op)
}

// compiler holds what every architecture section shares.
type compiler struct {
	a      assembler
	def    uint32
	enosys bool
	// rets are shared return instructions, by value.
	rets map[uint32]label
}

// retLabel returns a label placed on a `ret v`, emitted later.
func (c *compiler) retLabel(v uint32) label {
	if l, ok := c.rets[v]; ok {
		return l
	}
	l := c.a.newLabel()
	c.rets[v] = l
	return l
}

// program lays out: the architecture dispatch, one section per
// architecture (x32 shares AUDIT_ARCH_X86_64 with x86_64 and is told apart
// by the x32 bit of the number), then the syscall blocks, then the shared
// returns.
func (c *compiler) program(list []*archInfo, rules []map[uint32][]rule) (Program, error) {
	c.rets = map[uint32]label{}
	// Room for a big profile: growing by copies costs more.
	c.a = assembler{ins: make([]pending, 0, 2048), labels: make([]int, 0, 2048)}
	a := &c.a
	kill := c.retLabel(retKillProcess)

	sections := make([]label, len(list))
	for i := range list {
		sections[i] = a.newLabel()
	}
	find := func(name string) (label, bool) {
		for i, ar := range list {
			if ar.name == name {
				return sections[i], true
			}
		}
		return 0, false
	}
	a.load(offArch)
	x64, hasX64 := find("SCMP_ARCH_X86_64")
	x32, hasX32 := find("SCMP_ARCH_X32")
	if hasX64 || hasX32 {
		// Both live under AUDIT_ARCH_X86_64; x86_64 dispatches to x32.
		first := x64
		if !hasX64 {
			first = x32
		}
		next := a.newLabel()
		a.cond(opJEQ, auditArchX86_64, first, next)
		a.bind(next)
	}
	if i386, ok := find("SCMP_ARCH_X86"); ok {
		next := a.newLabel()
		a.cond(opJEQ, auditArchI386, i386, next)
		a.bind(next)
	}
	a.jump(kill)

	var blocks []func()
	for i, ar := range list {
		a.bind(sections[i])
		a.load(offNr)
		// Split x86_64 from x32 numbers.
		switch ar.name {
		case "SCMP_ARCH_X86_64":
			other := kill
			if hasX32 {
				other = x32
			}
			next := a.newLabel()
			a.cond(opJGE, x32Bit, other, next)
			a.bind(next)
		case "SCMP_ARCH_X32":
			next := a.newLabel()
			a.cond(opJGE, x32Bit, next, kill)
			a.bind(next)
		}
		if c.enosys {
			next := a.newLabel()
			a.cond(opJGT, ar.table.max|ar.nrBits, c.retLabel(retErrno|errnoENOSYS), next)
			a.bind(next)
		}
		// Syscalls whose only rule is the default action need no block.
		// In number order, so that the output is deterministic.
		var all, nrs []uint32
		for nr := range rules[i] {
			all = append(all, nr)
		}
		sort.Slice(all, func(x, y int) bool { return all[x] < all[y] })
		targets := map[uint32]target{}
		for _, nr := range all {
			rs := rules[i][nr]
			if len(rs) > 0 && allUnconditional(rs) {
				if rs[0].action == c.def {
					continue
				}
				targets[nr] = target{simple: true, ret: rs[0].action}
			} else {
				l := a.newLabel()
				targets[nr] = target{block: l}
				rs, wide := rs, ar.wide
				blocks = append(blocks, func() {
					a.bind(l)
					c.block(rs, wide)
				})
			}
			nrs = append(nrs, nr)
		}
		c.tree(nrs, targets)
	}
	for _, b := range blocks {
		b()
	}
	// Shared returns, in a fixed order so that output is deterministic.
	var vals []uint32
	for v := range c.rets {
		vals = append(vals, v)
	}
	sort.Slice(vals, func(x, y int) bool { return vals[x] < vals[y] })
	for _, v := range vals {
		a.bind(c.rets[v])
		a.ret(v)
	}
	return a.assemble()
}

func allUnconditional(rs []rule) bool {
	for _, r := range rs {
		if len(r.args) > 0 {
			return false
		}
	}
	return true
}

// tree dispatches the syscall number in A: a binary search over the
// sorted numbers, linear at the leaves, the default action when none
// matches. Leaves return simple verdicts themselves, so that their
// conditional jumps stay short.
func (c *compiler) tree(nrs []uint32, targets map[uint32]target) {
	a := &c.a
	const leaf = 8
	if len(nrs) <= leaf {
		local := map[uint32]label{}
		var order []uint32
		for _, nr := range nrs {
			t := targets[nr]
			to := t.block
			if t.simple {
				l, ok := local[t.ret]
				if !ok {
					l = a.newLabel()
					local[t.ret] = l
					order = append(order, t.ret)
				}
				to = l
			}
			next := a.newLabel()
			a.cond(opJEQ, nr, to, next)
			a.bind(next)
		}
		a.ret(c.def)
		for _, v := range order {
			a.bind(local[v])
			a.ret(v)
		}
		return
	}
	mid := len(nrs) / 2
	right, left := a.newLabel(), a.newLabel()
	a.cond(opJGE, nrs[mid], right, left)
	a.bind(left)
	c.tree(nrs[:mid], targets)
	a.bind(right)
	c.tree(nrs[mid:], targets)
}

// target is where a syscall number leads: a plain return or a block that
// checks arguments.
type target struct {
	simple bool
	ret    uint32
	block  label
}

// block checks one syscall's rules; every path ends in a return.
func (c *compiler) block(rs []rule, wide bool) {
	a := &c.a
	for _, r := range rs {
		if len(r.args) == 0 {
			continue
		}
		fail := a.newLabel()
		for _, arg := range r.args {
			pass := a.newLabel()
			c.condition(arg, wide, pass, fail)
			a.bind(pass)
		}
		a.jump(c.retLabel(r.action))
		a.bind(fail)
	}
	a.jump(c.retLabel(resolveUnconditional(rs, c.def)))
}

// condition jumps to pass when the argument comparison holds, else to
// fail. A 64-bit argument is compared as high word, then low word.
func (c *compiler) condition(arg specs.LinuxSeccompArg, wide bool, pass, fail label) {
	a := &c.a
	lo := uint32(offArgs + 8*arg.Index)
	hi := lo + 4
	vh, vl := uint32(arg.Value>>32), uint32(arg.Value)
	// hiCmp tests the high word; for 32-bit arguments it is zero and the
	// comparison is decided now.
	hiCmp := func(op uint16, k uint32, t, f label) {
		if !wide {
			ok := false
			switch op {
			case opJEQ:
				ok = k == 0
			case opJGT:
				ok = false // 0 > k never holds
			case opJGE:
				ok = k == 0
			}
			if ok {
				a.jump(t)
			} else {
				a.jump(f)
			}
			return
		}
		a.load(hi)
		a.cond(op, k, t, f)
	}
	loCmp := func(op uint16, k uint32, t, f label) {
		a.load(lo)
		a.cond(op, k, t, f)
	}
	checkLo := a.newLabel()
	switch arg.Op {
	case specs.OpEqualTo:
		hiCmp(opJEQ, vh, checkLo, fail)
		a.bind(checkLo)
		loCmp(opJEQ, vl, pass, fail)
	case specs.OpNotEqual:
		hiCmp(opJEQ, vh, checkLo, pass)
		a.bind(checkLo)
		loCmp(opJEQ, vl, fail, pass)
	case specs.OpGreaterThan, specs.OpGreaterEqual:
		eq := a.newLabel()
		hiCmp(opJGT, vh, pass, eq)
		a.bind(eq)
		hiCmp(opJEQ, vh, checkLo, fail)
		a.bind(checkLo)
		op := uint16(opJGT)
		if arg.Op == specs.OpGreaterEqual {
			op = opJGE
		}
		loCmp(op, vl, pass, fail)
	case specs.OpLessThan, specs.OpLessEqual:
		eq := a.newLabel()
		hiCmp(opJGE, vh, eq, pass)
		a.bind(eq)
		hiCmp(opJEQ, vh, checkLo, fail)
		a.bind(checkLo)
		// lo < vl is !(lo >= vl); lo <= vl is !(lo > vl).
		op := uint16(opJGE)
		if arg.Op == specs.OpLessEqual {
			op = opJGT
		}
		loCmp(op, vl, fail, pass)
	case specs.OpMaskedEqual:
		mh, ml := vh, vl
		dh, dl := uint32(arg.ValueTwo>>32), uint32(arg.ValueTwo)
		if wide {
			a.load(hi)
			a.and(mh)
			a.cond(opJEQ, dh, checkLo, fail)
		} else if dh == 0 {
			a.jump(checkLo)
		} else {
			a.jump(fail)
		}
		a.bind(checkLo)
		a.load(lo)
		a.and(ml)
		a.cond(opJEQ, dl, pass, fail)
	}
}
