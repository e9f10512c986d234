// Command esc is the attacker inside the security tests' containers: a
// static binary with one subcommand per attack, printing what the kernel
// answered. It also wraps cove-runc with openat2 disabled (noopenat2).
package main

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"
)

func init() { runtime.LockOSThread() }

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: esc COMMAND [ARGS...]")
		os.Exit(2)
	}
	args := os.Args[2:]
	var err error
	switch os.Args[1] {
	case "ids":
		err = ids()
	case "cwd":
		wd, werr := unix.Getwd()
		if werr != nil {
			fmt.Println("UNREACHABLE", werr)
		} else {
			fmt.Println(wd)
		}
	case "fds":
		err = fds()
	case "open":
		fmt.Println(result(openMode(args[0], args[1])))
	case "write":
		fmt.Println(result(writeFile(args[0], args[1])))
	case "noopenat2":
		err = noOpenat2(args)
	case "probe-openat2":
		_, perr := unix.Openat2(unix.AT_FDCWD, "/", &unix.OpenHow{Flags: unix.O_PATH})
		fmt.Println(result(perr))
	case "exe-attack":
		err = exeAttack(args[0])
	case "ptrace-attack":
		err = ptraceAttack(args[0])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "esc:", err)
		os.Exit(1)
	}
}

// result is "ok" or the errno's name.
func result(err error) string {
	if err == nil {
		return "ok"
	}
	var errno unix.Errno
	if errors.As(err, &errno) {
		return unix.ErrnoName(errno)
	}
	return err.Error()
}

func openMode(path, mode string) error {
	flags := unix.O_RDONLY
	switch mode {
	case "w":
		flags = unix.O_WRONLY
	case "rw":
		flags = unix.O_RDWR
	case "path":
		flags = unix.O_PATH
	}
	fd, err := unix.Open(path, flags|unix.O_CLOEXEC, 0)
	if err == nil {
		unix.Close(fd)
	}
	return err
}

func writeFile(path, data string) error {
	fd, err := unix.Open(path, unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	_, err = unix.Write(fd, []byte(data))
	return err
}

// ids prints the process's ids and capability sets, one "name=value" a line.
func ids() error {
	fmt.Printf("uid=%d\neuid=%d\ngid=%d\negid=%d\n", os.Getuid(), os.Geteuid(), os.Getgid(), os.Getegid())
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && (strings.HasPrefix(k, "Cap") || k == "NoNewPrivs") {
			fmt.Printf("%s=%s\n", k, strings.TrimSpace(v))
		}
	}
	return nil
}

// fds prints "N target" for every open fd but the one reading the list.
func fds() error {
	d, err := os.Open("/proc/self/fd")
	if err != nil {
		return err
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return err
	}
	self := fmt.Sprint(d.Fd())
	for _, n := range names {
		if n == self {
			continue
		}
		t, _ := os.Readlink("/proc/self/fd/" + n)
		fmt.Println(n, t)
	}
	return nil
}
