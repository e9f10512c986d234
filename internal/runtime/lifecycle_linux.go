package runtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"cove/internal/runtime/cgroups"
	"cove/internal/runtime/console"
	"cove/internal/runtime/hooks"
)

// Start releases the init of a created container: it executes the
// container's process.
func (r *Runtime) Start(id string) error {
	s, unlock, err := r.lockLoad(id)
	if err != nil {
		return err
	}
	defer unlock()
	if st := s.Status(); st != StatusCreated {
		return fmt.Errorf("cannot start container %q: it is %s, not created", id, st)
	}
	sock := filepath.Join(s.dir, execSock)
	conn, err := dialExec(sock)
	if err != nil {
		return err
	}
	defer conn.Close()
	os.Remove(sock)
	// The init closes the connection on execve (CLOEXEC); anything it
	// writes first is an error. A bare EOF is success even if the process
	// has exited already: it ran.
	var m message
	if err := json.NewDecoder(conn).Decode(&m); err == nil && m.Type == msgError {
		return fmt.Errorf("start container %q: %s", id, m.Msg)
	} else if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("start container %q: %w", id, err)
	}
	r.debug("container started", "id", id, "pid", s.Pid)
	r.poststart(s)
	return nil
}

func (r *Runtime) poststart(s *State) {
	if h := s.Spec.Hooks; h != nil {
		st := s.OCI()
		r.runAll("poststart", h.Poststart, &st)
	}
}

// runAll runs every hook even when some fail, logging failures as
// warnings: the spec's rule for poststart and poststop hooks.
func (r *Runtime) runAll(kind string, hs []specs.Hook, st *specs.State) {
	for i := range hs {
		if err := hooks.Run(hs[i:i+1], st); err != nil {
			r.warn(kind+" hook failed", "id", st.ID, "error", err)
		}
	}
}

// Run creates and starts a container. Without detach it waits for the
// container's process, forwarding signals to it, then deletes the container
// and returns the process's exit status (128+signal when killed).
func (r *Runtime) Run(o *CreateOptions, detach bool) (int, error) {
	if detach {
		if err := r.Create(o); err != nil {
			return -1, err
		}
		return 0, r.Start(o.ID)
	}
	// Forward signals from the moment the init exists.
	sigs := make(chan os.Signal, 32)
	signal.Notify(sigs)
	defer signal.Stop(sigs)

	c, err := r.create(o, false)
	if err != nil {
		return -1, err
	}
	fail := func(err error) (int, error) {
		c.destroy(r)
		c.unlock()
		return -1, err
	}
	var master *os.File
	if c.console != nil {
		if master, err = console.RecvFd(c.console); err != nil {
			return fail(fmt.Errorf("receive pty master: %w", err))
		}
		defer master.Close()
	}
	if err := c.init.send(message{Type: msgStart}); err != nil {
		return fail(err)
	}
	if _, err := c.init.recv(); err != nil && !errors.Is(err, io.EOF) {
		return fail(fmt.Errorf("start container %q: %w", o.ID, err))
	}
	c.init.sync.Close()
	r.poststart(c.st)
	// Other commands (kill, delete --force) may act on it while it runs.
	c.unlock()

	code := waitForward(c.st.Pid, sigs, master)
	if s, unlock, err := r.lockLoad(o.ID); err == nil {
		if err := r.destroy(s); err != nil {
			r.warn("delete after run", "id", o.ID, "error", err)
		}
		unlock()
	}
	return code, nil
}

// dialExec connects to a waiting init's exec socket.
func dialExec(path string) (*net.UnixConn, error) {
	var c *net.UnixConn
	err := withSockPath(path, func(name string) (err error) {
		c, err = net.DialUnix("unix", nil, &net.UnixAddr{Name: name, Net: "unix"})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("connect to container init: %w", err)
	}
	return c, nil
}

// resize copies our terminal's size to the container's.
func resize(master *os.File) {
	if ws, err := unix.IoctlGetWinsize(int(os.Stdin.Fd()), unix.TIOCGWINSZ); err == nil {
		console.SetSize(master, ws.Row, ws.Col)
	}
}

// Kill sends sig to the container's init, or with all to every process in
// its cgroup.
func (r *Runtime) Kill(id string, sig unix.Signal, all bool) error {
	s, unlock, err := r.lockLoad(id)
	if err != nil {
		return err
	}
	defer unlock()
	switch s.Status() {
	case StatusStopped:
		return fmt.Errorf("cannot kill container %q: container not running", id)
	case StatusCreating:
		return fmt.Errorf("cannot kill container %q: it is still being created", id)
	case StatusPaused:
		if sig == unix.SIGKILL {
			// A frozen task dies of SIGKILL only once thawed (v1 freezer).
			defer thaw(s.CgroupPaths)
		}
	}
	if all && len(s.CgroupPaths) > 0 {
		pids, err := cgroups.Load(s.CgroupPaths).Pids()
		if err != nil {
			return err
		}
		for _, pid := range pids {
			if err := unix.Kill(pid, sig); err != nil && err != unix.ESRCH {
				return fmt.Errorf("kill %d: %w", pid, err)
			}
		}
		return nil
	}
	return signalInit(s, sig)
}

// signalInit signals the init through a pidfd checked against the recorded
// start time, so a recycled pid is never hit.
func signalInit(s *State, sig unix.Signal) error {
	fd, err := unix.PidfdOpen(s.Pid, 0)
	if err != nil {
		return fmt.Errorf("cannot kill container %q: container not running", s.ID)
	}
	defer unix.Close(fd)
	if start, zombie, err := procStart(s.Pid); err != nil || zombie || start != s.PidStart {
		return fmt.Errorf("cannot kill container %q: container not running", s.ID)
	}
	if err := unix.PidfdSendSignal(fd, sig, nil, 0); err != nil {
		return fmt.Errorf("kill container %q: %w", s.ID, err)
	}
	return nil
}

// Delete removes a container. A running or paused container is refused
// unless force is set, in which case its processes are killed first.
func (r *Runtime) Delete(id string, force bool) error {
	s, unlock, err := r.lockLoad(id)
	if err != nil {
		if force && errors.Is(err, ErrNotExist) {
			return nil
		}
		return err
	}
	defer unlock()
	if st := s.Status(); (st == StatusRunning || st == StatusPaused) && !force {
		return fmt.Errorf("cannot delete container %q that is not stopped: %s (use --force)", id, st)
	}
	if s.Status() == StatusPaused {
		// A frozen cgroup would keep its processes from dying.
		thaw(s.CgroupPaths)
	}
	r.debug("deleting container", "id", id, "status", s.Status())
	return r.destroy(s)
}

func thaw(paths map[string]string) {
	if p, ok := paths["freezer"]; ok {
		os.WriteFile(filepath.Join(p, "freezer.state"), []byte("THAWED"), 0)
	}
	if p, ok := paths["unified"]; ok {
		os.WriteFile(filepath.Join(p, "cgroup.freeze"), []byte("0"), 0)
	}
}

// State returns the state of container id.
func (r *Runtime) State(id string) (*State, error) {
	return r.Load(id)
}
