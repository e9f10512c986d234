package runtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"cove/internal/pathrs"
	"cove/internal/runtime/caps"
	"cove/internal/runtime/console"
	"cove/internal/runtime/hooks"
	"cove/internal/runtime/rootfs"
	"cove/internal/runtime/seccomp"
)

// initConfig is what the runtime sends the init over the sync socket.
type initConfig struct {
	Spec    *specs.Spec `json:"spec"`
	Rootfs  string      `json:"rootfs"`
	NoPivot bool        `json:"noPivot,omitempty"`
	// NoNewKeyring keeps the caller's session keyring (--no-new-keyring).
	NoNewKeyring bool `json:"noNewKeyring,omitempty"`
	NewMount     bool `json:"newMount,omitempty"`
	UserNS       bool `json:"userns,omitempty"`
	CgroupNS     bool `json:"cgroupns,omitempty"`
	// RuntimeHooks asks the init to stop after its mounts so the runtime
	// can run prestart and createRuntime hooks.
	RuntimeHooks bool `json:"runtimeHooks,omitempty"`
	// ExecFd is the listening exec socket (create); 0 means the start
	// signal comes on the sync socket (run).
	ExecFd int `json:"execFd,omitempty"`
	// ConsoleFd is the connected console socket when the process has a
	// terminal.
	ConsoleFd   int `json:"consoleFd,omitempty"`
	PreserveFds int `json:"preserveFds,omitempty"`
	// State is handed to the createContainer and startContainer hooks.
	State specs.State `json:"state"`
	// Exec marks a process joining a running container: every namespace
	// is joined already, so there is no root, hostname or hook to set up.
	Exec bool `json:"exec,omitempty"`
	// Seccomp is the compiled linux.seccomp filter, installed right
	// before or after the process drops its privileges.
	Seccomp *seccomp.Filter `json:"seccomp,omitempty"`
}

// LockInitThread must be called from an init function of the main package
// when the binary may run as the container init: every credential, namespace
// and capability change is per thread, so the init stays on one.
func LockInitThread() {
	if len(os.Args) > 1 && os.Args[1] == "init" {
		goruntime.LockOSThread()
	}
}

// Init is the container side of create and run. It never returns: it either
// executes the container process or exits with an error reported to the
// runtime.
func Init() {
	fd, err := strconv.Atoi(os.Getenv("_COVE_SYNCFD"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "cove-runc init: not started by the runtime")
		os.Exit(1)
	}
	os.Unsetenv("_COVE_SYNCFD")
	sync := os.NewFile(uintptr(fd), "sync")
	report := func(err error) {
		b, _ := json.Marshal(message{Type: msgError, Msg: err.Error()})
		sync.Write(append(b, '\n'))
	}
	w, err := runInit(sync)
	if w != nil {
		// After create returned, errors go to whoever called start.
		b, _ := json.Marshal(message{Type: msgError, Msg: err.Error()})
		w.Write(append(b, '\n'))
	} else {
		report(err)
	}
	os.Exit(1)
}

// runInit sets the container up and executes its process. It returns only
// on error, with the writer the error must go to when the sync socket is no
// longer read (nil otherwise).
func runInit(sync *os.File) (io.Writer, error) {
	dec := json.NewDecoder(sync)
	var m message
	if err := dec.Decode(&m); err != nil || m.Type != msgConfig {
		return nil, fmt.Errorf("read init config: %v", err)
	}
	var c initConfig
	if err := json.Unmarshal(m.Init, &c); err != nil {
		return nil, fmt.Errorf("decode init config: %w", err)
	}
	s := c.Spec
	send := func(typ string) error {
		b, _ := json.Marshal(message{Type: typ})
		_, err := sync.Write(append(b, '\n'))
		return err
	}
	if c.Exec {
		return runExec(&c, sync, dec, send)
	}
	if !c.NoNewKeyring {
		// A keyring of its own: the container must not see or use the
		// session keyring (and its secrets) of whoever started it.
		if _, err := unix.KeyctlJoinSessionKeyring("_ses." + c.State.ID); err != nil {
			return nil, fmt.Errorf("join session keyring: %w", err)
		}
	}
	rc := rootfsConfig(&c)
	if c.NewMount {
		if err := rootfs.Prepare(rc); err != nil {
			return nil, err
		}
	}
	if c.RuntimeHooks {
		if err := send(msgHooks); err != nil {
			return nil, err
		}
		if err := dec.Decode(&m); err != nil || m.Type != msgHooksDone {
			return nil, fmt.Errorf("wait for runtime hooks: %v", err)
		}
	}
	if s.Hooks != nil && len(s.Hooks.CreateContainer) > 0 {
		if err := hooks.Run(s.Hooks.CreateContainer, &c.State); err != nil {
			return nil, fmt.Errorf("createContainer hook: %w", err)
		}
	}
	if c.NewMount {
		if err := rootfs.Pivot(rc); err != nil {
			return nil, err
		}
	} else if s.Root != nil {
		if err := unix.Chroot(c.Rootfs); err != nil {
			return nil, fmt.Errorf("chroot %s: %w", c.Rootfs, err)
		}
		if err := unix.Chdir("/"); err != nil {
			return nil, fmt.Errorf("chdir /: %w", err)
		}
	}
	p := s.Process
	if p.Terminal {
		if err := setupConsole(c.ConsoleFd, c.NewMount, p.ConsoleSize); err != nil {
			return nil, err
		}
	} else if _, err := unix.Setsid(); err != nil {
		// A session of its own, as runc's init has: the container is not
		// part of its caller's session, so CRIU can dump it without
		// --shell-job.
		return nil, fmt.Errorf("setsid: %w", err)
	}
	if err := setHostnames(s); err != nil {
		return nil, err
	}
	if s.Linux != nil {
		if err := writeSysctls(s.Linux.Sysctl); err != nil {
			return nil, err
		}
	}
	if c.NewMount {
		if err := rootfs.Finalize(rc); err != nil {
			return nil, err
		}
	}
	if err := setRlimits(p.Rlimits); err != nil {
		return nil, err
	}
	p.Env = withHome(p.Env, p.User.UID)
	path, err := lookPath(p.Args[0], p.Env)
	if err != nil {
		return nil, err
	}
	// Identity and seccomp are final before create returns, as in runc:
	// a listener fd reaches the runtime while it still talks to us, and
	// after the filter only start's handshake and execve remain.
	if err := finishWithSeccomp(&c, sync, dec); err != nil {
		return nil, err
	}
	if err := send(msgReady); err != nil {
		return nil, err
	}

	// Wait for start: on the exec socket (create) or the sync socket (run).
	var errw io.Writer
	if c.ExecFd > 0 {
		sync.Close()
		conn, err := acceptStart(c.ExecFd)
		if err != nil {
			return nil, err
		}
		errw = conn
	} else {
		if err := dec.Decode(&m); err != nil || m.Type != msgStart {
			return nil, fmt.Errorf("wait for start: %v", err)
		}
		errw = sync
	}
	if s.Hooks != nil && len(s.Hooks.StartContainer) > 0 {
		st := c.State
		st.Status = specs.StateCreated
		if err := hooks.Run(s.Hooks.StartContainer, &st); err != nil {
			return errw, fmt.Errorf("startContainer hook: %w", err)
		}
	}
	err = unix.Exec(path, p.Args, p.Env)
	return errw, fmt.Errorf("exec %s: %w", p.Args[0], err)
}

// runExec finishes a process that joined a running container (exec): its
// terminal, limits and identity, then execve once the runtime says start.
func runExec(c *initConfig, sync *os.File, dec *json.Decoder, send func(string) error) (io.Writer, error) {
	p := c.Spec.Process
	if p.Terminal {
		if err := setupConsole(c.ConsoleFd, false, p.ConsoleSize); err != nil {
			return nil, err
		}
	}
	if err := setRlimits(p.Rlimits); err != nil {
		return nil, err
	}
	p.Env = withHome(p.Env, p.User.UID)
	path, err := lookPath(p.Args[0], p.Env)
	if err != nil {
		return nil, err
	}
	if err := finishWithSeccomp(c, sync, dec); err != nil {
		return nil, err
	}
	if err := send(msgReady); err != nil {
		return nil, err
	}
	err = unix.Exec(path, p.Args, p.Env)
	return nil, fmt.Errorf("exec %s: %w", p.Args[0], err)
}

func rootfsConfig(c *initConfig) *rootfs.Config {
	s := c.Spec
	rc := &rootfs.Config{
		Rootfs:   c.Rootfs,
		Mounts:   s.Mounts,
		NoPivot:  c.NoPivot,
		UserNS:   c.UserNS,
		CgroupNS: c.CgroupNS,
	}
	if s.Root != nil {
		rc.Readonly = s.Root.Readonly
	}
	if l := s.Linux; l != nil {
		rc.Propagation = l.RootfsPropagation
		rc.Devices = l.Devices
		rc.MaskedPaths = l.MaskedPaths
		rc.ReadonlyPaths = l.ReadonlyPaths
	}
	return rc
}

// acceptStart waits for `start` to connect to the exec socket and returns the
// connection; it is closed on exec (CLOEXEC), which tells start it worked.
func acceptStart(fd int) (*os.File, error) {
	for {
		nfd, _, err := unix.Accept4(fd, unix.SOCK_CLOEXEC)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("accept on exec socket: %w", err)
		}
		unix.Close(fd)
		return os.NewFile(uintptr(nfd), "start"), nil
	}
}

// setupConsole makes a pty in the container, sends its master to the console
// socket and makes the slave the process's stdio and controlling terminal.
func setupConsole(sockFd int, mountConsole bool, size *specs.Box) error {
	sock := os.NewFile(uintptr(sockFd), "console-socket")
	defer sock.Close()
	master, slave, err := console.NewPty()
	if err != nil {
		return err
	}
	defer master.Close()
	if size != nil {
		if err := console.SetSize(master, uint16(size.Height), uint16(size.Width)); err != nil {
			return err
		}
	}
	if mountConsole {
		if err := rootfs.MountConsole(slave); err != nil {
			return err
		}
	}
	if err := console.SendFd(sock, master); err != nil {
		return fmt.Errorf("send pty master: %w", err)
	}
	fd, err := unix.Open(slave, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", slave, err)
	}
	if _, err := unix.Setsid(); err != nil {
		return fmt.Errorf("setsid: %w", err)
	}
	if err := unix.IoctlSetInt(fd, unix.TIOCSCTTY, 0); err != nil {
		return fmt.Errorf("set controlling terminal: %w", err)
	}
	for i := 0; i <= 2; i++ {
		if err := unix.Dup3(fd, i, 0); err != nil {
			return fmt.Errorf("dup pty to fd %d: %w", i, err)
		}
	}
	return unix.Close(fd)
}

func setHostnames(s *specs.Spec) error {
	if s.Hostname != "" {
		if err := unix.Sethostname([]byte(s.Hostname)); err != nil {
			return fmt.Errorf("set hostname %q: %w", s.Hostname, err)
		}
	}
	if s.Domainname != "" {
		if err := unix.Setdomainname([]byte(s.Domainname)); err != nil {
			return fmt.Errorf("set domainname %q: %w", s.Domainname, err)
		}
	}
	return nil
}

func writeSysctls(sysctls map[string]string) error {
	for k, v := range sysctls {
		// The key was validated (no "/" or ".." games): dots become slashes.
		// Through a procfs handle: a fake /proc mounted by the spec must
		// not swallow the write (CVE-2025-52881).
		path := "sys/" + strings.ReplaceAll(k, ".", "/")
		if err := pathrs.WriteProcfs(path, []byte(v)); err != nil {
			return fmt.Errorf("set sysctl %s: %w", k, err)
		}
	}
	return nil
}

var rlimitNames = map[string]int{
	"RLIMIT_AS": unix.RLIMIT_AS, "RLIMIT_CORE": unix.RLIMIT_CORE, "RLIMIT_CPU": unix.RLIMIT_CPU,
	"RLIMIT_DATA": unix.RLIMIT_DATA, "RLIMIT_FSIZE": unix.RLIMIT_FSIZE, "RLIMIT_LOCKS": unix.RLIMIT_LOCKS,
	"RLIMIT_MEMLOCK": unix.RLIMIT_MEMLOCK, "RLIMIT_MSGQUEUE": unix.RLIMIT_MSGQUEUE, "RLIMIT_NICE": unix.RLIMIT_NICE,
	"RLIMIT_NOFILE": unix.RLIMIT_NOFILE, "RLIMIT_NPROC": unix.RLIMIT_NPROC, "RLIMIT_RSS": unix.RLIMIT_RSS,
	"RLIMIT_RTPRIO": unix.RLIMIT_RTPRIO, "RLIMIT_RTTIME": unix.RLIMIT_RTTIME, "RLIMIT_SIGPENDING": unix.RLIMIT_SIGPENDING,
	"RLIMIT_STACK": unix.RLIMIT_STACK,
}

func setRlimits(rl []specs.POSIXRlimit) error {
	for _, r := range rl {
		n, ok := rlimitNames[r.Type]
		if !ok {
			return fmt.Errorf("process.rlimits: unknown type %q", r.Type)
		}
		lim := unix.Rlimit{Cur: r.Soft, Max: r.Hard}
		if err := unix.Prlimit(0, n, &lim, nil); err != nil {
			return fmt.Errorf("set %s soft %d hard %d: %w", r.Type, r.Soft, r.Hard, err)
		}
	}
	return nil
}

// lookPath finds the executable in the container's PATH (from its env).
func lookPath(file string, env []string) (string, error) {
	check := func(p string) error {
		var st unix.Stat_t
		if err := unix.Stat(p, &st); err != nil {
			return err
		}
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			// What execve(2) says, and what engines read: Docker and
			// Podman turn "permission denied" into exit status 126.
			return unix.EACCES
		}
		return unix.Access(p, unix.X_OK)
	}
	if strings.Contains(file, "/") {
		if err := check(file); err != nil {
			return "", fmt.Errorf("exec: %q: %w", file, err)
		}
		return file, nil
	}
	path := "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	for _, e := range env {
		if v, ok := strings.CutPrefix(e, "PATH="); ok {
			path = v
		}
	}
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, file)
		if check(p) == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("exec: %q: executable file not found in $PATH", file)
}

// finishProcess drops to the process's identity: cwd, no_new_privs,
// capabilities, user and groups, umask. It runs on the init's locked
// thread before the init says it is ready; only the start handshake and
// execve follow.
//
// cwdDone says the cwd was entered and verified already.
func finishProcess(p *specs.Process, cwdDone bool) error {
	var bnd, eff, perm, inh, amb caps.Set
	if c := p.Capabilities; c != nil {
		var err error
		for _, x := range []struct {
			set   *caps.Set
			names []string
			field string
		}{{&bnd, c.Bounding, "bounding"}, {&eff, c.Effective, "effective"}, {&perm, c.Permitted, "permitted"},
			{&inh, c.Inheritable, "inheritable"}, {&amb, c.Ambient, "ambient"}} {
			if *x.set, err = caps.Parse(x.names); err != nil {
				return fmt.Errorf("process.capabilities.%s: %w", x.field, err)
			}
		}
	}
	if err := caps.DropBounding(bnd); err != nil {
		return err
	}
	if p.NoNewPrivileges {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return fmt.Errorf("set no_new_privs: %w", err)
		}
	}
	if err := caps.SetKeepCaps(true); err != nil {
		return err
	}
	if err := setUser(&p.User); err != nil {
		return err
	}
	if err := caps.SetKeepCaps(false); err != nil {
		return err
	}
	if err := caps.Apply(eff, perm, inh, amb); err != nil {
		return err
	}
	if p.User.Umask != nil {
		unix.Umask(int(*p.User.Umask))
	}
	if p.Cwd != "" && !cwdDone {
		if err := unix.Chdir(p.Cwd); err != nil {
			return fmt.Errorf("chdir to cwd %q: %w", p.Cwd, err)
		}
		return verifyCwd(p.Cwd)
	}
	return nil
}

// verifyCwd checks the cwd just entered: one reached through a magic link
// (/proc/self/fd/N of a host directory) lies outside the root, and getcwd
// says "(unreachable)" (CVE-2024-21626).
func verifyCwd(cwd string) error {
	if _, err := unix.Getwd(); err != nil {
		return fmt.Errorf("cwd %q is outside the container's root: %w", cwd, err)
	}
	return nil
}

// markCloseOnExec: nothing of the runtime's may cross execve, so every fd
// above stdio and the preserved ones gets CLOEXEC.
func markCloseOnExec(preserveFds int) error {
	if err := unix.CloseRange(uint(3+preserveFds), ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err != nil {
		return fmt.Errorf("mark fds close-on-exec: %w", err)
	}
	return nil
}

// setUser switches the calling thread to the process user. Raw syscalls:
// only this thread, which is the one that calls execve, changes identity.
func setUser(u *specs.User) error {
	groups := make([]int, len(u.AdditionalGids))
	for i, g := range u.AdditionalGids {
		groups[i] = int(g)
	}
	if err := unix.Setgroups(groups); err != nil {
		// In a user namespace with setgroups denied, dropping groups is
		// not possible and not needed when none were asked for.
		if !(errors.Is(err, unix.EPERM) && len(groups) == 0) {
			return fmt.Errorf("setgroups %v: %w", groups, err)
		}
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESGID, uintptr(u.GID), uintptr(u.GID), uintptr(u.GID)); e != 0 {
		return fmt.Errorf("setgid %d: %w", u.GID, e)
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESUID, uintptr(u.UID), uintptr(u.UID), uintptr(u.UID)); e != 0 {
		return fmt.Errorf("setuid %d: %w", u.UID, e)
	}
	return nil
}
