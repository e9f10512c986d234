//go:build linux

package seccomp

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Install loads the filter into the calling thread with seccomp(2) (and
// into every thread of the process with TSYNC). With Notify it returns the
// listener fd (close-on-exec), else -1.
//
// Preconditions: the thread has no_new_privs set or CAP_SYS_ADMIN in its
// user namespace; it is locked to its OS thread (the filter is per
// thread unless TSYNC).
func (f *Filter) Install() (int, error) {
	if err := f.Program.Validate(); err != nil {
		return -1, err
	}
	prog := make([]unix.SockFilter, len(f.Program))
	for i, in := range f.Program {
		prog[i] = unix.SockFilter{Code: in.Code, Jt: in.Jt, Jf: in.Jf, K: in.K}
	}
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	flags := f.Flags
	if f.Notify {
		flags |= FlagNewListener
	}
	r, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, uintptr(flags), uintptr(unsafe.Pointer(&fprog)))
	if errno != 0 {
		return -1, fmt.Errorf("seccomp(SET_MODE_FILTER, flags %#x): %w", flags, errno)
	}
	if f.Notify {
		return int(r), nil
	}
	if flags&FlagTSync != 0 && r != 0 {
		return -1, fmt.Errorf("seccomp: thread %d could not be synchronized (TSYNC)", r)
	}
	return -1, nil
}
