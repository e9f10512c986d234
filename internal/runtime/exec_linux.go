package runtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"cove/internal/runtime/cgroups"
	"cove/internal/runtime/console"
)

// ExecOptions are the exec flags beside the process itself.
type ExecOptions struct {
	ID            string
	Process       *specs.Process
	Detach        bool
	PidFile       string
	ConsoleSocket string
	PreserveFds   int
	// IgnorePaused allows exec into a paused container (runc's
	// --ignore-paused); the process then stays frozen until resume.
	IgnorePaused bool
}

// nsProcFile names the /proc/<pid>/ns entry of each namespace type.
var nsProcFile = map[specs.LinuxNamespaceType]string{
	specs.PIDNamespace:     "pid",
	specs.NetworkNamespace: "net",
	specs.MountNamespace:   "mnt",
	specs.IPCNamespace:     "ipc",
	specs.UTSNamespace:     "uts",
	specs.UserNamespace:    "user",
	specs.CgroupNamespace:  "cgroup",
	specs.TimeNamespace:    "time",
}

// Exec runs a new process in a running container: in every namespace and
// the cgroup of its init. Without Detach it waits and returns the process's
// exit status (128+signal when killed).
//
// The process joins the namespaces in the pre-Go nsexec stage, which is not
// dumpable from its first instruction: nothing in the container can ptrace
// it or open its /proc files before it has become the container's process
// (CVE-2016-9962).
func (r *Runtime) Exec(o *ExecOptions) (int, error) {
	s, err := r.Load(o.ID)
	if err != nil {
		return -1, err
	}
	switch st := s.Status(); st {
	case StatusRunning:
	case StatusPaused:
		if !o.IgnorePaused {
			return -1, fmt.Errorf("cannot exec in container %q: it is paused (resume it first, or use --ignore-paused)", o.ID)
		}
	default:
		return -1, fmt.Errorf("cannot exec in container %q: it is %s, not running", o.ID, st)
	}
	p := o.Process
	if p == nil || len(p.Args) == 0 {
		return -1, errors.New("exec: no command given")
	}
	if err := checkLSM(p.ApparmorProfile); err != nil {
		return -1, err
	}
	if p.Terminal && o.ConsoleSocket == "" && o.Detach {
		return -1, errors.New("exec: --tty with --detach needs --console-socket")
	}
	pid := strconv.Itoa(s.Pid)
	req := &spawnRequest{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr}
	for _, ns := range s.Spec.Linux.Namespaces {
		req.Join = append(req.Join, specs.LinuxNamespace{Type: ns.Type, Path: "/proc/" + pid + "/ns/" + nsProcFile[ns.Type]})
	}
	if len(s.CgroupPaths) > 0 {
		req.Place = cgroups.Load(s.CgroupPaths).Apply
		cgroups.PrimeAttach() // overlaps the kernel's wait with the spawn
	}
	for i := 0; i < o.PreserveFds; i++ {
		req.Files = append(req.Files, os.NewFile(uintptr(3+i), "preserved"))
	}
	ic := initConfig{Spec: &specs.Spec{Process: p}, Exec: true, PreserveFds: o.PreserveFds}
	// The container's seccomp profile binds its exec'd processes too.
	var prof *specs.LinuxSeccomp
	if s.Spec.Linux != nil && s.Spec.Linux.Seccomp != nil {
		prof = s.Spec.Linux.Seccomp
		if ic.Seccomp, err = r.compileSeccomp(prof); err != nil {
			return -1, err
		}
	}
	c := &container{st: s}
	if p.Terminal {
		sock, err := c.consoleSocket(o.ConsoleSocket)
		if err != nil {
			return -1, err
		}
		defer sock.Close()
		ic.ConsoleFd = 3 + len(req.Files)
		req.Files = append(req.Files, sock)
	}
	if c.console != nil {
		defer c.console.Close()
	}
	// Signals are forwarded from the moment the process exists.
	var sigs chan os.Signal
	if !o.Detach {
		sigs = make(chan os.Signal, 32)
		signal.Notify(sigs)
		defer signal.Stop(sigs)
	}
	sp, err := spawn(req)
	if err != nil {
		return -1, fmt.Errorf("exec in container %q: %w", o.ID, err)
	}
	defer sp.sync.Close()
	fail := func(err error) (int, error) {
		unix.Kill(sp.pid, unix.SIGKILL)
		unix.Wait4(sp.pid, nil, 0, nil)
		return -1, fmt.Errorf("exec in container %q: %w", o.ID, err)
	}
	// As for the init (and as runc does): otherwise the process keeps the
	// caller's score, e.g. containerd's shim's (+1) under docker exec.
	if adj := p.OOMScoreAdj; adj != nil {
		path := fmt.Sprintf("/proc/%d/oom_score_adj", sp.pid)
		if err := os.WriteFile(path, []byte(strconv.Itoa(*adj)), 0); err != nil {
			return fail(fmt.Errorf("process.oomScoreAdj %d: %w", *adj, err))
		}
	}
	raw, err := json.Marshal(&ic)
	if err != nil {
		return fail(err)
	}
	if err := sp.send(message{Type: msgConfig, Init: raw}); err != nil {
		return fail(err)
	}
	for {
		m, err := sp.expect(msgReady)
		if err == nil {
			break
		}
		if m.Type != msgSeccomp {
			return fail(err)
		}
		if err := seccompHandoff(sp, m, prof, s.OCI()); err != nil {
			return fail(err)
		}
	}
	// The connection closes on execve; an error message means it failed.
	if _, err := sp.recv(); err != nil && !errors.Is(err, io.EOF) {
		return fail(err)
	}
	if o.PidFile != "" {
		if err := writeFileAtomic(o.PidFile, []byte(strconv.Itoa(sp.pid)), 0o644); err != nil {
			return fail(fmt.Errorf("--pid-file: %w", err))
		}
	}
	var master *os.File
	if c.console != nil {
		if master, err = console.RecvFd(c.console); err != nil {
			return fail(fmt.Errorf("receive pty master: %w", err))
		}
		defer master.Close()
	}
	if o.Detach {
		return 0, nil
	}
	return waitForward(sp.pid, sigs, master), nil
}

// waitForward waits for pid (a child of ours), forwarding signals to it and
// proxying a terminal when master is set. It returns the exit status, 128+n
// for a signal.
func waitForward(pid int, sigs chan os.Signal, master *os.File) int {
	if master != nil {
		if restore, err := console.MakeRaw(os.Stdin); err == nil {
			defer restore()
		}
		resize(master)
		go console.Copy(master, os.Stdin, os.Stdout)
	}
	done := make(chan unix.WaitStatus, 1)
	go func() {
		var ws unix.WaitStatus
		for {
			if _, err := unix.Wait4(pid, &ws, 0, nil); err != unix.EINTR {
				break
			}
		}
		done <- ws
	}()
	for {
		select {
		case sig := <-sigs:
			switch sig {
			case unix.SIGCHLD, unix.SIGURG, unix.SIGPIPE:
			case unix.SIGWINCH:
				if master != nil {
					resize(master)
				}
			default:
				unix.Kill(pid, sig.(unix.Signal))
			}
		case ws := <-done:
			if ws.Signaled() {
				return 128 + int(ws.Signal())
			}
			return ws.ExitStatus()
		}
	}
}
