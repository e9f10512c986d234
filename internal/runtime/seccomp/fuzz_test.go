package seccomp

import (
	"encoding/binary"
	"encoding/json"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// FuzzCompile: any JSON profile either is refused or compiles to a valid
// program (jumps in range, a final return, at most 4096 instructions)
// whose verdicts agree with the reference evaluator on calls derived from
// the input.
func FuzzCompile(f *testing.F) {
	seed, _ := json.Marshal(DefaultProfile(defaultCaps))
	f.Add(seed)
	f.Add([]byte(`{"defaultAction":"SCMP_ACT_ALLOW"}`))
	f.Add([]byte(`{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":5,"architectures":["SCMP_ARCH_X86","SCMP_ARCH_X32"],` +
		`"syscalls":[{"names":["read","ioctl"],"action":"SCMP_ACT_TRACE","errnoRet":3,` +
		`"args":[{"index":1,"value":4294967296,"valueTwo":0,"op":"SCMP_CMP_GE"},{"index":5,"value":255,"valueTwo":8,"op":"SCMP_CMP_MASKED_EQ"}]}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var s specs.LinuxSeccomp
		if json.Unmarshal(data, &s) != nil {
			return
		}
		flt, err := Compile(&s)
		if err != nil {
			return
		}
		if err := flt.Program.Validate(); err != nil {
			t.Fatalf("invalid program: %v", err)
		}
		if flt.Program[len(flt.Program)-1].Code != opRet {
			t.Fatal("program does not end in a return")
		}
		// Calls from the input bytes: arch, number and arguments.
		for i := 0; i+8 <= len(data) && i < 8*64; i += 8 {
			w := binary.LittleEndian.Uint64(data[i:])
			c := call{arch: []uint32{x64, i386, x64, 0}[w&3], nr: uint32(w>>2) % 1100}
			if w&4 != 0 {
				c.nr |= x32Bit
			}
			for j := range c.args {
				c.args[j] = w * uint64(j+1) >> uint(j*7)
			}
			got, err := run(flt.Program, &c)
			if err != nil {
				t.Fatal(err)
			}
			if want := expect(&s, &c); got != want {
				t.Fatalf("call %+v: %#x, want %#x", c, got, want)
			}
		}
	})
}
