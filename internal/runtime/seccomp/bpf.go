package seccomp

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
)

// Instruction is one classic BPF instruction, laid out as the kernel's
// struct sock_filter.
type Instruction struct {
	Code   uint16
	Jt, Jf uint8
	K      uint32
}

// Classic BPF opcodes the compiler emits (linux/bpf_common.h).
const (
	bpfLD  = 0x00
	bpfALU = 0x04
	bpfJMP = 0x05
	bpfRET = 0x06

	bpfW   = 0x00
	bpfABS = 0x20
	bpfK   = 0x00
	bpfAND = 0x50

	bpfJA  = 0x00
	bpfJEQ = 0x10
	bpfJGT = 0x20
	bpfJGE = 0x30

	opLoad = bpfLD | bpfW | bpfABS
	opAnd  = bpfALU | bpfAND | bpfK
	opJA   = bpfJMP | bpfJA
	opJEQ  = bpfJMP | bpfJEQ | bpfK
	opJGT  = bpfJMP | bpfJGT | bpfK
	opJGE  = bpfJMP | bpfJGE | bpfK
	opRet  = bpfRET | bpfK

	// maxInstructions is the kernel's BPF_MAXINSNS.
	maxInstructions = 4096
	// seccompDataSize is sizeof(struct seccomp_data).
	seccompDataSize = 64
)

// Program is a compiled filter. It encodes as base64 of its binary form in
// JSON (the init receives it that way).
type Program []Instruction

// MarshalBinary encodes the program as the kernel lays it out in memory
// (8 bytes per instruction, little endian).
func (p Program) MarshalBinary() ([]byte, error) {
	b := make([]byte, 8*len(p))
	for i, in := range p {
		binary.LittleEndian.PutUint16(b[8*i:], in.Code)
		b[8*i+2] = in.Jt
		b[8*i+3] = in.Jf
		binary.LittleEndian.PutUint32(b[8*i+4:], in.K)
	}
	return b, nil
}

// UnmarshalBinary decodes what MarshalBinary wrote and checks the result
// with Validate.
func (p *Program) UnmarshalBinary(b []byte) error {
	if len(b)%8 != 0 {
		return fmt.Errorf("bpf program: %d bytes is not a whole number of instructions", len(b))
	}
	q := make(Program, len(b)/8)
	for i := range q {
		q[i] = Instruction{
			Code: binary.LittleEndian.Uint16(b[8*i:]),
			Jt:   b[8*i+2],
			Jf:   b[8*i+3],
			K:    binary.LittleEndian.Uint32(b[8*i+4:]),
		}
	}
	if err := q.Validate(); err != nil {
		return err
	}
	*p = q
	return nil
}

// MarshalJSON encodes the binary form as a base64 string. The standard
// alphabet needs no JSON escaping.
func (p Program) MarshalJSON() ([]byte, error) {
	b, _ := p.MarshalBinary()
	out := make([]byte, base64.StdEncoding.EncodedLen(len(b))+2)
	out[0], out[len(out)-1] = '"', '"'
	base64.StdEncoding.Encode(out[1:], b)
	return out, nil
}

// UnmarshalJSON decodes what MarshalJSON wrote.
func (p *Program) UnmarshalJSON(data []byte) error {
	if len(data) < 2 || data[0] != '"' || data[len(data)-1] != '"' {
		return errors.New("bpf program: not a JSON string")
	}
	b := make([]byte, base64.StdEncoding.DecodedLen(len(data)-2))
	n, err := base64.StdEncoding.Decode(b, data[1:len(data)-1])
	if err != nil {
		return fmt.Errorf("bpf program: %w", err)
	}
	return p.UnmarshalBinary(b[:n])
}

// Validate checks what the kernel's checker would refuse, restricted to the
// instructions this compiler emits: a length within 1..4096, known opcodes,
// aligned loads inside struct seccomp_data, every jump forward and inside
// the program, and a return as the last instruction (so no path runs off
// the end).
func (p Program) Validate() error {
	if len(p) == 0 {
		return errors.New("bpf program is empty")
	}
	if len(p) > maxInstructions {
		return fmt.Errorf("bpf program has %d instructions, more than the kernel's %d", len(p), maxInstructions)
	}
	for i, in := range p {
		rest := len(p) - i - 1 // instructions after this one
		switch in.Code {
		case opLoad:
			if in.K%4 != 0 || in.K >= seccompDataSize {
				return fmt.Errorf("bpf instruction %d: load from offset %d outside seccomp_data", i, in.K)
			}
		case opAnd, opRet:
		case opJA:
			if uint64(in.K) >= uint64(rest) {
				return fmt.Errorf("bpf instruction %d: jump by %d past the end", i, in.K)
			}
		case opJEQ, opJGT, opJGE:
			if int(in.Jt) >= rest || int(in.Jf) >= rest {
				return fmt.Errorf("bpf instruction %d: jump (%d, %d) past the end", i, in.Jt, in.Jf)
			}
		default:
			return fmt.Errorf("bpf instruction %d: unexpected opcode %#x", i, in.Code)
		}
	}
	if p[len(p)-1].Code != opRet {
		return errors.New("bpf program does not end with a return")
	}
	return nil
}

// label names a position in a program being assembled.
type label int32

// pending is an instruction whose jump targets are labels.
type pending struct {
	Instruction
	jt, jf label // conditional jumps
	to     label // JA
	far    bool  // conditional jump expanded to reach distant targets
}

// assembler builds a program with forward jumps to labels. Conditional
// jumps reach only 255 instructions; one whose target is further is
// expanded to a short jump over unconditional JAs (32-bit offsets).
type assembler struct {
	ins    []pending
	labels []int // label -> index into ins where it is bound, -1 if not yet
}

func (a *assembler) newLabel() label {
	a.labels = append(a.labels, -1)
	return label(len(a.labels) - 1)
}

// bind places l at the next instruction.
func (a *assembler) bind(l label) { a.labels[l] = len(a.ins) }

func (a *assembler) load(off uint32) {
	a.ins = append(a.ins, pending{Instruction: Instruction{Code: opLoad, K: off}})
}

func (a *assembler) and(k uint32) {
	a.ins = append(a.ins, pending{Instruction: Instruction{Code: opAnd, K: k}})
}

func (a *assembler) ret(k uint32) {
	a.ins = append(a.ins, pending{Instruction: Instruction{Code: opRet, K: k}})
}

func (a *assembler) jump(to label) {
	a.ins = append(a.ins, pending{Instruction: Instruction{Code: opJA}, to: to})
}

// cond jumps to t when `A op k` holds and to f otherwise.
func (a *assembler) cond(op uint16, k uint32, t, f label) {
	a.ins = append(a.ins, pending{Instruction: Instruction{Code: op, K: k}, jt: t, jf: f})
}

func (p *pending) size() int {
	if p.far {
		return 3
	}
	return 1
}

// assemble resolves labels into offsets, expanding far conditional jumps
// until every offset fits.
func (a *assembler) assemble() (Program, error) {
	for _, idx := range a.labels {
		if idx < 0 {
			return nil, errors.New("internal error: unbound label")
		}
	}
	pos := make([]int, len(a.ins)+1)
	for {
		for i := range a.ins {
			pos[i+1] = pos[i] + a.ins[i].size()
		}
		target := func(l label) int { return pos[a.labels[l]] }
		changed := false
		for i := range a.ins {
			in := &a.ins[i]
			if in.far || in.Code == opJA || in.Code&0x07 != bpfJMP {
				continue
			}
			t, f := target(in.jt)-pos[i]-1, target(in.jf)-pos[i]-1
			if t > 255 || f > 255 {
				in.far = true
				changed = true
			}
		}
		if !changed {
			break
		}
	}
	n := pos[len(a.ins)]
	if n > maxInstructions {
		return nil, fmt.Errorf("filter needs %d BPF instructions, more than the kernel's %d", n, maxInstructions)
	}
	out := make(Program, 0, n)
	for i, in := range a.ins {
		p := pos[i]
		off := func(l label, from int) (int, error) {
			d := pos[a.labels[l]] - from - 1
			if d < 0 {
				return 0, errors.New("internal error: backward jump")
			}
			return d, nil
		}
		switch {
		case in.Code == opJA:
			d, err := off(in.to, p)
			if err != nil {
				return nil, err
			}
			out = append(out, Instruction{Code: opJA, K: uint32(d)})
		case in.Code&0x07 == bpfJMP && in.far:
			dt, err := off(in.jt, p+1)
			if err != nil {
				return nil, err
			}
			df, err := off(in.jf, p+2)
			if err != nil {
				return nil, err
			}
			out = append(out,
				Instruction{Code: in.Code, K: in.K, Jt: 0, Jf: 1},
				Instruction{Code: opJA, K: uint32(dt)},
				Instruction{Code: opJA, K: uint32(df)})
		case in.Code&0x07 == bpfJMP:
			dt, err := off(in.jt, p)
			if err != nil {
				return nil, err
			}
			df, err := off(in.jf, p)
			if err != nil {
				return nil, err
			}
			out = append(out, Instruction{Code: in.Code, K: in.K, Jt: uint8(dt), Jf: uint8(df)})
		default:
			out = append(out, in.Instruction)
		}
	}
	return out, nil
}
