package caps

import (
	"fmt"
	"math/bits"
	"strings"
)

// Set is a set of capabilities as a bit mask (bit n = capability number n).
type Set uint64

// names lists the capabilities known to this package, indexed by number
// (linux/capability.h up to CAP_CHECKPOINT_RESTORE).
var names = [...]string{
	"CAP_CHOWN",              // 0
	"CAP_DAC_OVERRIDE",       // 1
	"CAP_DAC_READ_SEARCH",    // 2
	"CAP_FOWNER",             // 3
	"CAP_FSETID",             // 4
	"CAP_KILL",               // 5
	"CAP_SETGID",             // 6
	"CAP_SETUID",             // 7
	"CAP_SETPCAP",            // 8
	"CAP_LINUX_IMMUTABLE",    // 9
	"CAP_NET_BIND_SERVICE",   // 10
	"CAP_NET_BROADCAST",      // 11
	"CAP_NET_ADMIN",          // 12
	"CAP_NET_RAW",            // 13
	"CAP_IPC_LOCK",           // 14
	"CAP_IPC_OWNER",          // 15
	"CAP_SYS_MODULE",         // 16
	"CAP_SYS_RAWIO",          // 17
	"CAP_SYS_CHROOT",         // 18
	"CAP_SYS_PTRACE",         // 19
	"CAP_SYS_PACCT",          // 20
	"CAP_SYS_ADMIN",          // 21
	"CAP_SYS_BOOT",           // 22
	"CAP_SYS_NICE",           // 23
	"CAP_SYS_RESOURCE",       // 24
	"CAP_SYS_TIME",           // 25
	"CAP_SYS_TTY_CONFIG",     // 26
	"CAP_MKNOD",              // 27
	"CAP_LEASE",              // 28
	"CAP_AUDIT_WRITE",        // 29
	"CAP_AUDIT_CONTROL",      // 30
	"CAP_SETFCAP",            // 31
	"CAP_MAC_OVERRIDE",       // 32
	"CAP_MAC_ADMIN",          // 33
	"CAP_SYSLOG",             // 34
	"CAP_WAKE_ALARM",         // 35
	"CAP_BLOCK_SUSPEND",      // 36
	"CAP_AUDIT_READ",         // 37
	"CAP_PERFMON",            // 38
	"CAP_BPF",                // 39
	"CAP_CHECKPOINT_RESTORE", // 40
}

// byName maps a capability name to its number.
var byName = func() map[string]int {
	m := make(map[string]int, len(names))
	for i, n := range names {
		m[n] = i
	}
	return m
}()

// MaxKnown is the highest capability number this package has a name for.
const MaxKnown = len(names) - 1

// Parse maps names like "CAP_CHOWN" to a Set; an unknown name is an error
// naming it. Names are case-sensitive, as in the OCI runtime spec.
func Parse(names []string) (Set, error) {
	var s Set
	for _, n := range names {
		i, ok := byName[n]
		if !ok {
			return 0, fmt.Errorf("unknown capability %q", n)
		}
		s |= 1 << uint(i)
	}
	return s, nil
}

// Known reports whether name is a capability name Parse accepts.
func Known(name string) bool {
	_, ok := byName[name]
	return ok
}

// Names returns the names in s, sorted by number. Bits without a known name
// are rendered as "CAP_<n>".
func (s Set) Names() []string {
	out := make([]string, 0, bits.OnesCount64(uint64(s)))
	for i := 0; i < 64; i++ {
		if !s.Has(i) {
			continue
		}
		if i < len(names) {
			out = append(out, names[i])
		} else {
			out = append(out, fmt.Sprintf("CAP_%d", i))
		}
	}
	return out
}

// Has reports whether capability number c is in s.
func (s Set) Has(c int) bool {
	return c >= 0 && c < 64 && s&(1<<uint(c)) != 0
}

// String renders s as a comma-separated list of names.
func (s Set) String() string {
	return strings.Join(s.Names(), ",")
}

// upTo returns the capabilities of s numbered 0..last.
func (s Set) upTo(last int) Set {
	if last >= 63 {
		return s
	}
	if last < 0 {
		return 0
	}
	return s & (1<<uint(last+1) - 1)
}
