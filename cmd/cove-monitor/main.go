// Command cove-monitor is the per-container supervisor cove starts for
// each container (see internal/engine/monitor). It is not meant to be run
// by hand. Arguments are key=value pairs; fd 3, if open, is the sync pipe
// and fd 4, if open, the first attach client.
package main

import (
	"os"
	"strconv"
	"strings"
	"syscall"

	"cove/internal/engine/monitor"
)

func main() {
	// The engine starts us with GOGC=20 (a small heap: our working set is
	// a few buffers); runtime/debug would pull in fmt and reflect.
	var c monitor.Config
	for _, a := range os.Args[1:] {
		k, v, _ := strings.Cut(a, "=")
		switch k {
		case "id":
			c.ID = v
		case "runtime":
			c.Runtime = v
		case "runtime-root":
			c.RuntimeRoot = v
		case "bundle":
			c.Bundle = v
		case "run-dir":
			c.RunDir = v
		case "log":
			c.LogPath = v
		case "exit":
			c.ExitPath = v
		case "cove":
			c.Cove = v
		case "cove-root":
			c.CoveRoot = v
		case "tty":
			c.Tty = v == "1"
		case "stdin":
			c.Stdin = v == "1"
		case "restart":
			c.Restart = v
		case "first-claims":
			c.FirstClaims = v == "1"
		case "max-retries":
			c.MaxRetries, _ = strconv.Atoi(v)
		default:
			os.Stderr.WriteString("cove-monitor: unknown argument " + a + "\n")
			os.Exit(2)
		}
	}
	if c.ID == "" || c.Runtime == "" || c.RunDir == "" || c.Bundle == "" {
		os.Stderr.WriteString("cove-monitor: id, runtime, bundle and run-dir are required\n")
		os.Exit(2)
	}
	var sync *os.File
	var first *os.File
	if isOpen(3) {
		sync = os.NewFile(3, "sync")
		syscall.CloseOnExec(3)
	}
	if isOpen(4) {
		syscall.CloseOnExec(4)
		// Non-blocking, so reads and deadlines go through the poller.
		syscall.SetNonblock(4, true)
		first = os.NewFile(4, "attach")
	}
	os.Exit(monitor.Run(c, sync, first))
}

func isOpen(fd int) bool {
	var st syscall.Stat_t
	return syscall.Fstat(fd, &st) == nil
}
