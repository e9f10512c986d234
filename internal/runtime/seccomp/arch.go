package seccomp

// archInfo describes an architecture the compiler makes filters for.
type archInfo struct {
	name  string // runtime-spec name
	audit uint32 // AUDIT_ARCH_* value in seccomp_data.arch
	table *sysTable
	// nrBits are set in every syscall number of the arch (x32).
	nrBits uint32
	// wide is true when syscall arguments are 64-bit.
	wide bool
}

// Audit architecture values (linux/audit.h).
const (
	auditArchX86_64 = 0xc000003e
	auditArchI386   = 0x40000003
	// x32Bit marks x32 syscalls, which run under AUDIT_ARCH_X86_64.
	x32Bit = 0x40000000
)

// arches are the architectures of an x86_64 host: native, i386 and x32.
var arches = map[string]*archInfo{
	"SCMP_ARCH_X86_64": {name: "SCMP_ARCH_X86_64", audit: auditArchX86_64, table: &tableX86_64, wide: true},
	"SCMP_ARCH_X86":    {name: "SCMP_ARCH_X86", audit: auditArchI386, table: &tableX86},
	"SCMP_ARCH_X32":    {name: "SCMP_ARCH_X32", audit: auditArchX86_64, table: &tableX32, nrBits: x32Bit, wide: true},
}

// foreignArches are runtime-spec architectures no x86_64 kernel presents;
// profiles list them for portability and the compiler skips them.
var foreignArches = map[string]bool{
	"SCMP_ARCH_ARM": true, "SCMP_ARCH_AARCH64": true,
	"SCMP_ARCH_MIPS": true, "SCMP_ARCH_MIPS64": true, "SCMP_ARCH_MIPS64N32": true,
	"SCMP_ARCH_MIPSEL": true, "SCMP_ARCH_MIPSEL64": true, "SCMP_ARCH_MIPSEL64N32": true,
	"SCMP_ARCH_PPC": true, "SCMP_ARCH_PPC64": true, "SCMP_ARCH_PPC64LE": true,
	"SCMP_ARCH_S390": true, "SCMP_ARCH_S390X": true, "SCMP_ARCH_PARISC": true,
	"SCMP_ARCH_PARISC64": true, "SCMP_ARCH_RISCV64": true, "SCMP_ARCH_LOONGARCH64": true,
	"SCMP_ARCH_M68K": true, "SCMP_ARCH_SH": true, "SCMP_ARCH_SHEB": true,
}
