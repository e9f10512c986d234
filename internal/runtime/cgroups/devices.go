package cgroups

import (
	"encoding/binary"
	"fmt"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Access bits and device types as the kernel's cgroup device hook passes
// them (BPF_DEVCG_ACC_* and BPF_DEVCG_DEV_*).
const (
	accMknod = 1
	accRead  = 2
	accWrite = 4
	accAll   = accMknod | accRead | accWrite

	devBlock = 1
	devChar  = 2
)

// devRule is one normalised device cgroup rule; -1 is a wildcard number.
type devRule struct {
	allow        bool
	typ          byte // 'a', 'b' or 'c'
	major, minor int64
	access       uint32
}

// parseDeviceRules validates and normalises spec rules. An empty type means
// 'a' (all), a missing or negative number any, an empty access "rwm".
func parseDeviceRules(in []specs.LinuxDeviceCgroup) ([]devRule, error) {
	out := make([]devRule, 0, len(in))
	for i, d := range in {
		r := devRule{allow: d.Allow, typ: 'a', major: -1, minor: -1}
		switch d.Type {
		case "", "a":
		case "b", "c":
			r.typ = d.Type[0]
		default:
			return nil, fmt.Errorf("device rule %d: invalid type %q", i, d.Type)
		}
		if d.Major != nil && *d.Major >= 0 {
			r.major = *d.Major
		}
		if d.Minor != nil && *d.Minor >= 0 {
			r.minor = *d.Minor
		}
		if r.major > 0xffffffff || r.minor > 0xffffffff {
			return nil, fmt.Errorf("device rule %d: device number out of range", i)
		}
		for _, c := range d.Access {
			switch c {
			case 'r':
				r.access |= accRead
			case 'w':
				r.access |= accWrite
			case 'm':
				r.access |= accMknod
			default:
				return nil, fmt.Errorf("device rule %d: invalid access %q", i, d.Access)
			}
		}
		if d.Access == "" {
			r.access = accAll
		}
		out = append(out, r)
	}
	return out, nil
}

// String formats the rule for v1 devices.allow / devices.deny: "c 1:3 rwm".
func (r devRule) String() string {
	num := func(v int64) string {
		if v < 0 {
			return "*"
		}
		return fmt.Sprint(v)
	}
	var acc strings.Builder
	for _, a := range []struct {
		bit uint32
		c   byte
	}{{accRead, 'r'}, {accWrite, 'w'}, {accMknod, 'm'}} {
		if r.access&a.bit != 0 {
			acc.WriteByte(a.c)
		}
	}
	return fmt.Sprintf("%c %s:%s %s", r.typ, num(r.major), num(r.minor), acc.String())
}

// BPF opcodes used by the device program (see linux/bpf.h).
const (
	opLdxW   = 0x61 // BPF_LDX | BPF_MEM | BPF_W
	opMovK   = 0xb7 // BPF_ALU64 | BPF_MOV | BPF_K
	opMovX   = 0xbf // BPF_ALU64 | BPF_MOV | BPF_X
	opAndK   = 0x57 // BPF_ALU64 | BPF_AND | BPF_K
	opRshK   = 0x77 // BPF_ALU64 | BPF_RSH | BPF_K
	opJa     = 0x05 // BPF_JMP | BPF_JA
	opJneK   = 0x55 // BPF_JMP | BPF_JNE | BPF_K
	opJsetK  = 0x45 // BPF_JMP | BPF_JSET | BPF_K
	opExit   = 0x95 // BPF_JMP | BPF_EXIT
	insnSize = 8
)

// insn is one eBPF instruction; label, when non-zero, is a jump target
// resolved into off by assemble.
type insn struct {
	code     uint8
	dst, src uint8
	off      int16
	imm      int32
	label    int
}

// deviceProgram compiles rules into a BPF_PROG_TYPE_CGROUP_DEVICE program
// returning 1 (allow) or 0 (deny).
//
// Semantics, the same as replaying the rules on a v1 devices cgroup that
// starts with everything denied: each requested access bit (the kernel may
// ask for read and write at once) is decided separately by the last rule
// that matches the device type, major, minor and holds that bit; a bit no
// rule matches is denied. The request is allowed when every bit is.
//
// Registers: r2 access bits, r3 device type, r4 major, r5 minor.
func deviceProgram(rules []devRule) []insn {
	p := []insn{
		{code: opLdxW, dst: 2, src: 1, off: 0}, // r2 = ctx->access_type
		{code: opMovX, dst: 3, src: 2},         // r3 = r2
		{code: opAndK, dst: 3, imm: 0xffff},    // r3 &= 0xffff: type
		{code: opRshK, dst: 2, imm: 16},        // r2 >>= 16: access
		{code: opLdxW, dst: 4, src: 1, off: 4}, // r4 = ctx->major
		{code: opLdxW, dst: 5, src: 1, off: 8}, // r5 = ctx->minor
	}
	label := 0
	for _, bit := range []uint32{accMknod, accRead, accWrite} {
		label++
		next := label // the code for the next bit
		p = append(p,
			insn{code: opJsetK, dst: 2, imm: int32(bit), off: 1}, // requested: evaluate
			insn{code: opJa, label: next})                        // not requested: skip
		decided := false
		for i := len(rules) - 1; i >= 0 && !decided; i-- {
			r := rules[i]
			if r.access&bit == 0 {
				continue
			}
			label++
			miss := label // the code for the next rule
			var checks []insn
			switch r.typ {
			case 'b':
				checks = append(checks, insn{code: opJneK, dst: 3, imm: devBlock, label: miss})
			case 'c':
				checks = append(checks, insn{code: opJneK, dst: 3, imm: devChar, label: miss})
			}
			if r.major >= 0 {
				checks = append(checks, insn{code: opJneK, dst: 4, imm: int32(uint32(r.major)), label: miss})
			}
			if r.minor >= 0 {
				checks = append(checks, insn{code: opJneK, dst: 5, imm: int32(uint32(r.minor)), label: miss})
			}
			p = append(p, checks...)
			if r.allow {
				p = append(p, insn{code: opJa, label: next})
			} else {
				p = append(p, insn{code: opMovK, dst: 0, imm: 0}, insn{code: opExit})
			}
			// A rule without checks decides every request: anything after it
			// would be unreachable, which the verifier rejects.
			decided = len(checks) == 0
			p = append(p, insn{label: -miss}) // label marker
		}
		if !decided {
			p = append(p, insn{code: opMovK, dst: 0, imm: 0}, insn{code: opExit})
		}
		p = append(p, insn{label: -next})
	}
	p = append(p, insn{code: opMovK, dst: 0, imm: 1}, insn{code: opExit})
	return assemble(p)
}

// assemble drops label markers (negative label) and turns jumps to labels
// into relative offsets.
func assemble(p []insn) []insn {
	pos := map[int]int{}
	var out []insn
	for _, in := range p {
		if in.label < 0 {
			pos[-in.label] = len(out)
			continue
		}
		out = append(out, in)
	}
	for i := range out {
		if out[i].label > 0 {
			out[i].off = int16(pos[out[i].label] - i - 1)
			out[i].label = 0
		}
	}
	return out
}

// encode returns the kernel's struct bpf_insn layout of p.
func encode(p []insn) []byte {
	b := make([]byte, len(p)*insnSize)
	for i, in := range p {
		o := b[i*insnSize:]
		o[0] = in.code
		o[1] = in.dst&0xf | in.src<<4
		binary.LittleEndian.PutUint16(o[2:], uint16(in.off))
		binary.LittleEndian.PutUint32(o[4:], uint32(in.imm))
	}
	return b
}
