// Command sysc makes raw syscalls and prints what each returned, for the
// seccomp integration tests. Calls are separated by ":", each a syscall
// number followed by up to six arguments (decimal or 0x hex):
//
//	sysc 39 : 41 40 1 0      getpid, then socket(AF_VSOCK, SOCK_STREAM, 0)
//
// prints one line per call: "<nr> ret=<r1> errno=<n>".
package main

import (
	"fmt"
	"os"
	"strconv"
	"syscall"
)

func main() {
	var calls [][]uintptr
	var cur []uintptr
	for _, a := range os.Args[1:] {
		if a == ":" {
			calls = append(calls, cur)
			cur = nil
			continue
		}
		v, err := strconv.ParseUint(a, 0, 64)
		if err != nil {
			fmt.Fprintf(os.Stderr, "sysc: %q: %v\n", a, err)
			os.Exit(2)
		}
		cur = append(cur, uintptr(v))
	}
	calls = append(calls, cur)
	for _, c := range calls {
		if len(c) == 0 || len(c) > 7 {
			fmt.Fprintln(os.Stderr, "sysc: a call is a number and up to 6 arguments")
			os.Exit(2)
		}
		var args [6]uintptr
		copy(args[:], c[1:])
		r1, _, errno := syscall.RawSyscall6(c[0], args[0], args[1], args[2], args[3], args[4], args[5])
		fmt.Printf("%d ret=%d errno=%d\n", c[0], int64(r1), int(errno))
	}
}
