package seccomp

//go:generate go run ./mktables -asm /usr/include/x86_64-linux-gnu/asm -o ztables.go

import "sort"

// sysEntry is one syscall name and its number on one architecture.
type sysEntry struct {
	name string
	nr   uint32
}

// sysTable is one architecture's syscalls, sorted by name; max is the
// highest number in it.
type sysTable struct {
	max     uint32
	entries []sysEntry
}

// lookup returns the number of the named syscall.
func (t *sysTable) lookup(name string) (uint32, bool) {
	i := sort.Search(len(t.entries), func(i int) bool { return t.entries[i].name >= name })
	if i < len(t.entries) && t.entries[i].name == name {
		return t.entries[i].nr, true
	}
	return 0, false
}

// SyscallNumber returns the number of a syscall on an architecture given
// by its runtime-spec name (SCMP_ARCH_X86_64, SCMP_ARCH_X86, SCMP_ARCH_X32;
// x32 numbers include the 0x40000000 bit).
func SyscallNumber(arch, name string) (uint32, bool) {
	a, ok := arches[arch]
	if !ok {
		return 0, false
	}
	nr, ok := a.table.lookup(name)
	return nr | a.nrBits, ok
}
