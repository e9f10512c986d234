package seccomp

import (
	"encoding/binary"
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// call is the struct seccomp_data a filter sees.
type call struct {
	arch uint32
	nr   uint32
	args [6]uint64
}

func (c *call) bytes() []byte {
	b := make([]byte, seccompDataSize)
	binary.LittleEndian.PutUint32(b[0:], c.nr)
	binary.LittleEndian.PutUint32(b[4:], c.arch)
	for i, a := range c.args {
		binary.LittleEndian.PutUint64(b[16+8*i:], a)
	}
	return b
}

// run interprets a program the way the kernel does, for the instructions
// the compiler emits.
func run(p Program, c *call) (uint32, error) {
	data := c.bytes()
	var acc uint32
	for pc, steps := 0, 0; ; steps++ {
		if pc >= len(p) || steps > len(p) {
			return 0, fmt.Errorf("pc %d ran off the program (%d instructions)", pc, len(p))
		}
		in := p[pc]
		switch in.Code {
		case opLoad:
			if in.K+4 > seccompDataSize {
				return 0, fmt.Errorf("pc %d: load at %d", pc, in.K)
			}
			acc = binary.LittleEndian.Uint32(data[in.K:])
			pc++
		case opAnd:
			acc &= in.K
			pc++
		case opJA:
			pc += 1 + int(in.K)
		case opJEQ, opJGT, opJGE:
			var ok bool
			switch in.Code {
			case opJEQ:
				ok = acc == in.K
			case opJGT:
				ok = acc > in.K
			case opJGE:
				ok = acc >= in.K
			}
			if ok {
				pc += 1 + int(in.Jt)
			} else {
				pc += 1 + int(in.Jf)
			}
		case opRet:
			return in.K, nil
		default:
			return 0, fmt.Errorf("pc %d: opcode %#x", pc, in.Code)
		}
	}
}

// expect is the verdict Compile's documented semantics give, computed
// directly from the profile.
func expect(s *specs.LinuxSeccomp, c *call) uint32 {
	listed := map[string]bool{}
	for _, a := range s.Architectures {
		if arches[string(a)] != nil {
			listed[string(a)] = true
		}
	}
	if len(listed) == 0 {
		listed["SCMP_ARCH_X86_64"] = true
	}
	var arch *archInfo
	switch {
	case c.arch == auditArchX86_64 && c.nr >= x32Bit:
		arch = arches["SCMP_ARCH_X32"]
	case c.arch == auditArchX86_64:
		arch = arches["SCMP_ARCH_X86_64"]
	case c.arch == auditArchI386:
		arch = arches["SCMP_ARCH_X86"]
	}
	if arch == nil || !listed[arch.name] {
		return retKillProcess
	}
	def, _, _ := action(s.DefaultAction, s.DefaultErrnoRet)
	if denies(def) && c.nr > arch.table.max|arch.nrBits {
		return retErrno | errnoENOSYS
	}
	args := c.args
	if !arch.wide {
		for i := range args {
			args[i] &= 0xffffffff
		}
	}
	var uncond *uint32
	for _, sc := range s.Syscalls {
		act, _, _ := action(sc.Action, sc.ErrnoRet)
		for _, name := range sc.Names {
			nr, ok := arch.table.lookup(name)
			if !ok || nr|arch.nrBits != c.nr {
				continue
			}
			if len(sc.Args) == 0 {
				if uncond == nil {
					uncond = &act
				}
				continue
			}
			if holds(sc.Args, args) {
				return act
			}
		}
	}
	if uncond != nil {
		return *uncond
	}
	return def
}

func holds(conds []specs.LinuxSeccompArg, args [6]uint64) bool {
	for _, a := range conds {
		v := args[a.Index]
		var ok bool
		switch a.Op {
		case specs.OpEqualTo:
			ok = v == a.Value
		case specs.OpNotEqual:
			ok = v != a.Value
		case specs.OpLessThan:
			ok = v < a.Value
		case specs.OpLessEqual:
			ok = v <= a.Value
		case specs.OpGreaterThan:
			ok = v > a.Value
		case specs.OpGreaterEqual:
			ok = v >= a.Value
		case specs.OpMaskedEqual:
			ok = v&a.Value == a.ValueTwo
		}
		if !ok {
			return false
		}
	}
	return true
}
