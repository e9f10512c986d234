// Command recvtty is a test helper for --console-socket: it listens on a unix
// socket, accepts one connection, receives a pty master over it and copies
// the master's output to stdout (--mode single) or discards it (--mode null)
// until the container side closes.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"syscall"

	"cove/internal/runtime/console"
)

func main() {
	if err := run(os.Args[1:], os.Stdin, os.Stdout, nil); err != nil {
		fmt.Fprintln(os.Stderr, "recvtty:", err)
		os.Exit(1)
	}
}

// run parses args and serves one console. ready, when not nil, is closed
// once the socket listens.
func run(args []string, stdin io.Reader, stdout io.Writer, ready chan<- struct{}) error {
	flags := flag.NewFlagSet("recvtty", flag.ContinueOnError)
	mode := flags.String("mode", "single", "single: copy the console to stdout; null: discard it")
	pidFile := flags.String("pid-file", "", "write recvtty's pid to this file once listening")
	flags.Usage = func() {
		fmt.Fprintln(flags.Output(), "usage: recvtty [--mode single|null] [--pid-file FILE] SOCKET-PATH")
		flags.PrintDefaults()
	}
	if err := flags.Parse(args); err != nil {
		return err
	}
	if flags.NArg() != 1 {
		flags.Usage()
		return errors.New("need exactly one socket path")
	}
	if *mode != "single" && *mode != "null" {
		return fmt.Errorf("unknown mode %q", *mode)
	}
	path := flags.Arg(0)

	ln, err := listen(path)
	if err != nil {
		return err
	}
	defer os.Remove(path)
	defer ln.Close()
	if *pidFile != "" {
		if err := os.WriteFile(*pidFile, fmt.Appendf(nil, "%d", os.Getpid()), 0o644); err != nil {
			return fmt.Errorf("write pid file: %w", err)
		}
	}
	if ready != nil {
		close(ready)
	}

	conn, err := ln.AcceptUnix()
	if err != nil {
		return fmt.Errorf("accept: %w", err)
	}
	f, err := conn.File()
	conn.Close()
	if err != nil {
		return fmt.Errorf("connection file: %w", err)
	}
	master, err := console.RecvFd(f)
	f.Close()
	if err != nil {
		return err
	}
	defer master.Close()

	if *mode == "null" {
		// Hold the master open, draining output so the container never
		// blocks on a full terminal buffer, until every slave is closed.
		return console.Copy(master, nil, io.Discard)
	}
	return console.Copy(master, stdin, stdout)
}

// listen creates a mode 0600 unix stream socket at path. A stale socket
// there is replaced; any other existing file is refused.
func listen(path string) (*net.UnixListener, error) {
	if st, err := os.Lstat(path); err == nil {
		if st.Mode().Type() != fs.ModeSocket {
			return nil, fmt.Errorf("%s exists and is not a socket", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("remove stale socket: %w", err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("check socket path: %w", err)
	}
	// The umask makes bind create the socket 0600 from the start, with no
	// window in which another user could connect.
	old := syscall.Umask(0o177)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	syscall.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	// The deferred Remove in run owns the path; the listener must not unlink
	// it a second time (possibly someone else's socket by then).
	ln.SetUnlinkOnClose(false)
	return ln, nil
}
