package caps

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

var lastOnce = sync.OnceValue(func() int {
	b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && n >= 0 && n < 64 {
			return n
		}
	}
	// Probe the bounding set: PR_CAPBSET_READ fails with EINVAL above the
	// last capability the kernel knows.
	n := 0
	for n < 63 {
		if _, err := unix.PrctlRetInt(unix.PR_CAPBSET_READ, uintptr(n+1), 0, 0, 0); err != nil {
			break
		}
		n++
	}
	return n
})

// Last returns the highest capability the running kernel knows
// (/proc/sys/kernel/cap_last_cap), cached after the first call.
func Last() int {
	return lastOnce()
}

// DropBounding removes from the calling thread's bounding set every
// capability not in keep (PR_CAPBSET_DROP). Capabilities already absent are
// skipped, so nothing is needed when no drop is required; otherwise the
// thread needs CAP_SETPCAP.
//
// Preconditions: the caller has locked its OS thread.
func DropBounding(keep Set) error {
	for c := 0; c <= Last(); c++ {
		if keep.Has(c) {
			continue
		}
		in, err := unix.PrctlRetInt(unix.PR_CAPBSET_READ, uintptr(c), 0, 0, 0)
		if err != nil {
			return fmt.Errorf("read bounding capability %s: %w", capName(c), err)
		}
		if in == 0 {
			continue
		}
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil {
			return fmt.Errorf("drop bounding capability %s: %w", capName(c), err)
		}
	}
	return nil
}

// SetKeepCaps turns PR_SET_KEEPCAPS on or off for the calling thread.
//
// Preconditions: the caller has locked its OS thread.
func SetKeepCaps(on bool) error {
	var v uintptr
	if on {
		v = 1
	}
	if err := unix.Prctl(unix.PR_SET_KEEPCAPS, v, 0, 0, 0); err != nil {
		return fmt.Errorf("prctl PR_SET_KEEPCAPS %d: %w", v, err)
	}
	return nil
}

// Apply sets the calling thread's effective, permitted and inheritable sets
// (capset, version 3) and then its ambient set (clear all, raise each).
// Capabilities above Last are ignored.
//
// Preconditions: the caller has locked its OS thread.
func Apply(effective, permitted, inheritable, ambient Set) error {
	last := Last()
	effective, permitted = effective.upTo(last), permitted.upTo(last)
	inheritable, ambient = inheritable.upTo(last), ambient.upTo(last)

	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	for i := range data {
		shift := uint(32 * i)
		data[i].Effective = uint32(effective >> shift)
		data[i].Permitted = uint32(permitted >> shift)
		data[i].Inheritable = uint32(inheritable >> shift)
	}
	// capset with version 3 reads two CapUserData structures.
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capset effective=%#x permitted=%#x inheritable=%#x: %w",
			uint64(effective), uint64(permitted), uint64(inheritable), err)
	}

	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil {
		// Kernels before 4.3 have no ambient set: fine when none is wanted.
		if ambient == 0 && errors.Is(err, unix.EINVAL) {
			return nil
		}
		return fmt.Errorf("clear ambient capabilities: %w", err)
	}
	for c := 0; c <= last; c++ {
		if !ambient.Has(c) {
			continue
		}
		if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_RAISE, uintptr(c), 0, 0); err != nil {
			return fmt.Errorf("raise ambient capability %s: %w", capName(c), err)
		}
	}
	return nil
}

// Current reads the calling thread's five sets from /proc/thread-self/status.
//
// Preconditions: the caller has locked its OS thread.
func Current() (eff, perm, inh, bnd, amb Set, err error) {
	b, err := os.ReadFile("/proc/thread-self/status")
	if err != nil {
		return 0, 0, 0, 0, 0, fmt.Errorf("read capabilities: %w", err)
	}
	return parseStatus(b)
}

// parseStatus extracts the Cap* lines of a /proc/<pid>/status file.
func parseStatus(b []byte) (eff, perm, inh, bnd, amb Set, err error) {
	fields := map[string]*Set{
		"CapEff": &eff, "CapPrm": &perm, "CapInh": &inh, "CapBnd": &bnd, "CapAmb": &amb,
	}
	seen := 0
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		dst, want := fields[key]
		if !ok || !want {
			continue
		}
		v, perr := strconv.ParseUint(strings.TrimSpace(val), 16, 64)
		if perr != nil {
			return 0, 0, 0, 0, 0, fmt.Errorf("parse %s in status: %w", key, perr)
		}
		*dst = Set(v)
		seen++
	}
	// CapAmb is missing before Linux 4.3; the other four are always there.
	if seen < 4 {
		return 0, 0, 0, 0, 0, fmt.Errorf("status has %d of 5 capability lines", seen)
	}
	return eff, perm, inh, bnd, amb, nil
}

// capName names capability number c for error messages.
func capName(c int) string {
	return Set(1 << uint(c)).String()
}
