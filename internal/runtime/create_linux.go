package runtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"cove/internal/runtime/bundle"
	"cove/internal/runtime/cgroups"
	"cove/internal/runtime/console"
	"cove/internal/runtime/hooks"
)

// Runtime is one runtime root (runc's --root) and its settings.
type Runtime struct {
	Store
	// Log receives warnings (failed poststart/poststop hooks); nil is silent.
	Log *slog.Logger
}

// CreateOptions are the create and run flags.
type CreateOptions struct {
	ID            string
	Bundle        string
	PidFile       string
	ConsoleSocket string
	NoPivot       bool
	NoNewKeyring  bool
	PreserveFds   int
	// Stdio of the container process when it has no terminal; nil means
	// the caller's.
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
}

// container is a container being created by this process.
type container struct {
	st      *State
	cg      cgroups.Manager
	init    *spawned
	unlock  func()
	console *os.File // our end of the internal console socket (run)
}

func (r *Runtime) warn(msg string, args ...any) {
	if r.Log != nil {
		r.Log.Warn(msg, args...)
	}
}

func (r *Runtime) debug(msg string, args ...any) {
	if r.Log != nil {
		r.Log.Debug(msg, args...)
	}
}

// Create sets up container o.ID from its bundle and leaves its init waiting
// for Start.
func (r *Runtime) Create(o *CreateOptions) error {
	c, err := r.create(o, true)
	if err != nil {
		return err
	}
	c.unlock()
	return nil
}

func (r *Runtime) create(o *CreateOptions, detached bool) (c *container, err error) {
	spec, err := bundle.Load(o.Bundle)
	if err != nil {
		return nil, err
	}
	if spec.Linux == nil {
		return nil, errors.New("config.json: linux: required on this platform")
	}
	bundleDir, err := filepath.Abs(o.Bundle)
	if err != nil {
		return nil, fmt.Errorf("bundle %s: %w", o.Bundle, err)
	}
	if err := checkLSM(spec.Process.ApparmorProfile); err != nil {
		return nil, err
	}
	if spec.Process.Terminal && o.ConsoleSocket == "" && detached {
		return nil, errors.New("process.terminal is true: --console-socket is required when the container is detached")
	}
	dir, unlock, err := r.newContainer(o.ID)
	if err != nil {
		return nil, err
	}
	c = &container{unlock: unlock, st: &State{
		ID:          o.ID,
		Bundle:      bundleDir,
		Rootfs:      spec.Root.Path,
		Created:     time.Now().UTC(),
		Annotations: spec.Annotations,
		Spec:        spec,
		dir:         dir,
	}}
	defer func() {
		if err != nil {
			c.destroy(r)
			c.unlock()
			c = nil
		}
	}()

	cg, err := cgroups.New(spec.Linux.CgroupsPath, o.ID)
	if err != nil {
		return c, fmt.Errorf("linux.cgroupsPath: %w", err)
	}
	c.st.CgroupPaths = cg.Paths()
	// Recorded before anything exists, so a crash from here on leaves a
	// state that delete can clean up.
	if err := c.st.save(); err != nil {
		return c, err
	}
	if err := cg.Create(); err != nil {
		return c, err
	}
	c.cg = cg
	// The kernel's wait before the first cgroup move now overlaps the
	// work up to spawn's Apply (see PrimeAttach).
	cgroups.PrimeAttach()

	req := &spawnRequest{
		UIDMappings: spec.Linux.UIDMappings,
		GIDMappings: spec.Linux.GIDMappings,
		TimeOffsets: spec.Linux.TimeOffsets,
		Place:       cg.Apply,
		Stdin:       o.Stdin,
		Stdout:      o.Stdout,
		Stderr:      o.Stderr,
	}
	if req.Stdin == nil && req.Stdout == nil && req.Stderr == nil {
		req.Stdin, req.Stdout, req.Stderr = os.Stdin, os.Stdout, os.Stderr
	}
	ic := initConfig{Spec: spec, Rootfs: spec.Root.Path, NoPivot: o.NoPivot, NoNewKeyring: o.NoNewKeyring, PreserveFds: o.PreserveFds}
	if spec.Linux.Seccomp != nil {
		if ic.Seccomp, err = r.compileSeccomp(spec.Linux.Seccomp); err != nil {
			return c, err
		}
		ic.Spec = withoutSeccomp(spec)
	}
	for _, ns := range spec.Linux.Namespaces {
		if ns.Path != "" {
			req.Join = append(req.Join, ns)
			continue
		}
		req.Clone |= nsFlags[ns.Type]
		switch ns.Type {
		case specs.MountNamespace:
			ic.NewMount = true
		case specs.UserNamespace:
			ic.UserNS = true
		case specs.CgroupNamespace:
			ic.CgroupNS = true
		}
	}
	for i := 0; i < o.PreserveFds; i++ {
		req.Files = append(req.Files, os.NewFile(uintptr(3+i), "preserved"))
	}
	// Our own fds follow the preserved ones; spawn puts the sync socket last.
	base := 3 + len(req.Files)
	var extra []*os.File
	if detached {
		l, err := listenExec(filepath.Join(dir, execSock))
		if err != nil {
			return c, err
		}
		defer l.Close()
		ic.ExecFd = base + len(extra)
		extra = append(extra, l)
	}
	if spec.Process.Terminal {
		sock, err := c.consoleSocket(o.ConsoleSocket)
		if err != nil {
			return c, err
		}
		defer sock.Close()
		ic.ConsoleFd = base + len(extra)
		extra = append(extra, sock)
	}
	req.Files = append(req.Files, extra...)

	h := spec.Hooks
	//lint:ignore SA1019 prestart is deprecated but still honoured
	ic.RuntimeHooks = h != nil && (len(h.Prestart) > 0 || len(h.CreateRuntime) > 0)
	ic.State = specs.State{Version: specs.Version, ID: o.ID, Status: specs.StateCreating, Bundle: bundleDir, Annotations: spec.Annotations}

	p, err := spawn(req)
	if err != nil {
		return c, err
	}
	c.init = p
	c.st.Pid = p.pid
	if c.st.PidStart, _, err = procStart(p.pid); err != nil {
		return c, fmt.Errorf("read init start time: %w", err)
	}
	if err := c.st.save(); err != nil {
		return c, err
	}
	// From here, not from the init: the init is not dumpable, so in a user
	// namespace its own /proc files are out of its reach.
	if adj := spec.Process.OOMScoreAdj; adj != nil {
		path := fmt.Sprintf("/proc/%d/oom_score_adj", p.pid)
		if err := os.WriteFile(path, []byte(strconv.Itoa(*adj)), 0); err != nil {
			return c, fmt.Errorf("process.oomScoreAdj %d: %w", *adj, err)
		}
	}
	ic.State.Pid = p.pid
	raw, err := json.Marshal(&ic)
	if err != nil {
		return c, err
	}
	if err := p.send(message{Type: msgConfig, Init: raw}); err != nil {
		return c, fmt.Errorf("send init config: %w", err)
	}
	for {
		m, err := p.recv()
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = errors.New("container init exited during setup")
			}
			return c, err
		}
		if m.Type == msgReady {
			break
		}
		if m.Type == msgSeccomp {
			if err := seccompHandoff(p, m, spec.Linux.Seccomp, ic.State); err != nil {
				return c, err
			}
			continue
		}
		if m.Type != msgHooks {
			return c, fmt.Errorf("sync: unexpected message %q", m.Type)
		}
		st := ic.State
		//lint:ignore SA1019 prestart is deprecated but still honoured
		if err := hooks.Run(h.Prestart, &st); err != nil {
			return c, fmt.Errorf("prestart hook: %w", err)
		}
		if err := hooks.Run(h.CreateRuntime, &st); err != nil {
			return c, fmt.Errorf("createRuntime hook: %w", err)
		}
		if err := p.send(message{Type: msgHooksDone}); err != nil {
			return c, err
		}
	}
	// Limits apply once setup is done (the init's mknod of linux.devices
	// must not be refused by the device rules) and before the process runs.
	if err := cg.Set(effectiveResources(spec)); err != nil {
		return c, fmt.Errorf("linux.resources: %w", err)
	}
	c.st.Ready = true
	if err := c.st.save(); err != nil {
		return c, err
	}
	if o.PidFile != "" {
		if err := writeFileAtomic(o.PidFile, []byte(strconv.Itoa(p.pid)), 0o644); err != nil {
			return c, fmt.Errorf("--pid-file: %w", err)
		}
	}
	if detached {
		p.sync.Close()
	}
	r.debug("container created", "id", o.ID, "pid", p.pid, "cgroups", c.st.CgroupPaths)
	return c, nil
}

// consoleSocket connects to the caller's console socket, or (run without
// one) makes an internal pair and keeps our end to receive the master.
func (c *container) consoleSocket(path string) (*os.File, error) {
	if path != "" {
		f, err := console.Dial(path)
		if err != nil {
			return nil, fmt.Errorf("--console-socket: %w", err)
		}
		return f, nil
	}
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("console socketpair: %w", err)
	}
	c.console = os.NewFile(uintptr(fds[0]), "console")
	return os.NewFile(uintptr(fds[1]), "console-init"), nil
}

// listenExec makes the exec socket the waiting init accepts start on: a
// path socket, mode 0600, in the container's 0700 state directory.
func listenExec(path string) (*os.File, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("exec socket: %w", err)
	}
	f := os.NewFile(uintptr(fd), "exec.sock")
	err = withSockPath(path, func(name string) error { return unix.Bind(fd, &unix.SockaddrUnix{Name: name}) })
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("bind %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		f.Close()
		return nil, err
	}
	if err := unix.Listen(fd, 1); err != nil {
		f.Close()
		return nil, fmt.Errorf("listen %s: %w", path, err)
	}
	return f, nil
}

// destroy removes everything a container has on the host: its processes,
// cgroup and state directory. Poststop hooks run when the container had
// been created.
func (c *container) destroy(r *Runtime) {
	if c.init != nil {
		c.init.sync.Close()
	}
	if c.console != nil {
		c.console.Close()
	}
	r.destroy(c.st)
}

// destroy kills what is left of a container and removes it.
func (r *Runtime) destroy(s *State) error {
	var errs []error
	cg := cgroups.Load(s.CgroupPaths)
	if len(s.CgroupPaths) > 0 {
		if err := cg.Kill(); err != nil {
			errs = append(errs, err)
		}
	}
	if s.Pid > 0 {
		if start, _, err := procStart(s.Pid); err == nil && start == s.PidStart {
			unix.Kill(s.Pid, unix.SIGKILL)
		}
		// Reap it when it is our child (run); harmless otherwise.
		unix.Wait4(s.Pid, nil, unix.WNOHANG, nil)
	}
	if s.Ready && s.Spec != nil && s.Spec.Hooks != nil {
		st := s.OCI()
		st.Status = specs.StateStopped
		r.runAll("poststop", s.Spec.Hooks.Poststop, &st)
	}
	if len(s.CgroupPaths) > 0 {
		if err := cg.Destroy(); err != nil {
			errs = append(errs, err)
		}
	}
	if s.dir != "" {
		if err := os.RemoveAll(s.dir); err != nil {
			errs = append(errs, fmt.Errorf("remove state: %w", err))
		}
	}
	return errors.Join(errs...)
}
