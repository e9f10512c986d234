package cgroups

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func i64(v int64) *int64 { return &v }

// allowedRef is the reference semantics: per access bit, the last rule
// matching the device and holding the bit decides; no match denies.
func allowedRef(rules []devRule, typ byte, major, minor int64, access uint32) bool {
	for _, bit := range []uint32{accMknod, accRead, accWrite} {
		if access&bit == 0 {
			continue
		}
		ok := false
		for _, r := range rules {
			if r.access&bit != 0 && (r.typ == 'a' || r.typ == typ) &&
				(r.major < 0 || r.major == major) && (r.minor < 0 || r.minor == minor) {
				ok = r.allow
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// runBPF interprets the instruction subset deviceProgram emits, on the raw
// encoded bytes, with ctx = struct bpf_cgroup_dev_ctx.
func runBPF(t *testing.T, code []byte, ctx [3]uint32) uint64 {
	var reg [11]uint64
	for pc, steps := 0, 0; ; pc, steps = pc+1, steps+1 {
		if pc < 0 || pc*insnSize >= len(code) || steps > 100000 {
			t.Fatalf("pc %d out of program (%d insns)", pc, len(code)/insnSize)
		}
		in := code[pc*insnSize:]
		op, dst, src := in[0], in[1]&0xf, in[1]>>4
		off := int(int16(binary.LittleEndian.Uint16(in[2:])))
		imm := uint64(uint32(binary.LittleEndian.Uint32(in[4:])))
		switch op {
		case opLdxW:
			if src != 1 || off%4 != 0 || off > 8 {
				t.Fatalf("bad ctx load at %d", pc)
			}
			reg[dst] = uint64(ctx[off/4])
		case opMovX:
			reg[dst] = reg[src]
		case opMovK:
			reg[dst] = imm
		case opAndK:
			reg[dst] &= imm
		case opRshK:
			reg[dst] >>= imm
		case opJa:
			pc += off
		case opJneK:
			if reg[dst] != imm {
				pc += off
			}
		case opJsetK:
			if reg[dst]&imm != 0 {
				pc += off
			}
		case opExit:
			return reg[0]
		default:
			t.Fatalf("unknown opcode %#x at %d", op, pc)
		}
	}
}

func TestDeviceProgramMatchesReference(t *testing.T) {
	sets := map[string][]specs.LinuxDeviceCgroup{
		"empty": nil,
		"typical": {
			{Allow: false, Access: "rwm"},
			{Allow: true, Type: "c", Major: i64(1), Minor: i64(3), Access: "rwm"},
			{Allow: true, Type: "c", Major: i64(1), Minor: i64(5), Access: "rwm"},
			{Allow: true, Type: "c", Major: i64(136), Access: "rwm"},
			{Allow: true, Type: "c", Access: "m"},
			{Allow: true, Type: "b", Access: "m"},
		},
		"override": {
			{Allow: true, Type: "c", Major: i64(1), Minor: i64(5), Access: "rwm"},
			{Allow: false, Type: "c", Major: i64(1), Minor: i64(5), Access: "r"},
		},
		"allow all then deny": {
			{Allow: true},
			{Allow: false, Type: "b", Major: i64(8), Access: "w"},
		},
		"deny all last": {
			{Allow: true, Type: "c", Major: i64(1), Minor: i64(3)},
			{Allow: false},
		},
		"split access": {
			{Allow: true, Type: "c", Major: i64(1), Minor: i64(3), Access: "r"},
			{Allow: true, Type: "c", Major: i64(1), Minor: i64(3), Access: "w"},
		},
	}
	devs := [][3]int64{{devChar, 1, 3}, {devChar, 1, 5}, {devChar, 136, 2}, {devBlock, 8, 0}, {devBlock, 1, 3}, {devChar, 10, 200}}
	for name, spec := range sets {
		t.Run(name, func(t *testing.T) {
			rules, err := parseDeviceRules(spec)
			if err != nil {
				t.Fatal(err)
			}
			code := encode(deviceProgram(rules))
			for _, d := range devs {
				typ := byte('c')
				if d[0] == devBlock {
					typ = 'b'
				}
				for acc := uint32(1); acc <= accAll; acc++ {
					want := allowedRef(rules, typ, d[1], d[2], acc)
					got := runBPF(t, code, [3]uint32{acc<<16 | uint32(d[0]), uint32(d[1]), uint32(d[2])}) == 1
					if got != want {
						t.Errorf("%c %d:%d access %03b: program %v, reference %v", typ, d[1], d[2], acc, got, want)
					}
				}
			}
		})
	}
}

func TestDeviceProgramRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for n := 0; n < 300; n++ {
		var rules []devRule
		for range rng.IntN(8) {
			r := devRule{allow: rng.IntN(2) == 0, typ: "abc"[rng.IntN(3)], major: int64(rng.IntN(3)) - 1, minor: int64(rng.IntN(3)) - 1, access: uint32(rng.IntN(7) + 1)}
			rules = append(rules, r)
		}
		code := encode(deviceProgram(rules))
		for _, typ := range []byte{'b', 'c'} {
			dt := uint32(devBlock)
			if typ == 'c' {
				dt = devChar
			}
			for major := int64(0); major < 2; major++ {
				for minor := int64(0); minor < 2; minor++ {
					for acc := uint32(1); acc <= accAll; acc++ {
						want := allowedRef(rules, typ, major, minor, acc)
						if got := runBPF(t, code, [3]uint32{acc<<16 | dt, uint32(major), uint32(minor)}) == 1; got != want {
							t.Fatalf("rules %v, %c %d:%d %03b: program %v, reference %v", rules, typ, major, minor, acc, got, want)
						}
					}
				}
			}
		}
	}
}

func TestParseDeviceRules(t *testing.T) {
	tests := []struct {
		in   specs.LinuxDeviceCgroup
		want string
		err  bool
	}{
		{specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: i64(1), Minor: i64(3), Access: "rwm"}, "c 1:3 rwm", false},
		{specs.LinuxDeviceCgroup{}, "a *:* rwm", false},
		{specs.LinuxDeviceCgroup{Type: "b", Major: i64(8), Minor: i64(-1), Access: "mr"}, "b 8:* rm", false},
		{specs.LinuxDeviceCgroup{Type: "x"}, "", true},
		{specs.LinuxDeviceCgroup{Type: "c", Access: "rx"}, "", true},
		{specs.LinuxDeviceCgroup{Type: "c", Major: i64(1 << 33)}, "", true},
	}
	for _, tt := range tests {
		got, err := parseDeviceRules([]specs.LinuxDeviceCgroup{tt.in})
		if (err != nil) != tt.err {
			t.Errorf("%+v: error %v, want error %v", tt.in, err, tt.err)
			continue
		}
		if err == nil && got[0].String() != tt.want {
			t.Errorf("%+v: %q, want %q", tt.in, got[0].String(), tt.want)
		}
	}
}
