package runtime

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"cove/internal/runtime/seccomp"
)

// Sync messages of the seccomp listener hand-off.
const (
	msgSeccomp     = "seccomp"     // init: listener fd installed, number in Fd
	msgSeccompDone = "seccompdone" // runtime: fd copied and sent, go on
)

// seccompCacheDir holds compiled filters under the runtime root. "@" is
// not allowed in container ids, so no container can take the name.
const seccompCacheDir = "@cache/seccomp"

// compileSeccomp compiles a profile, or reads it from the runtime root's
// filter cache.
func (r *Runtime) compileSeccomp(s *specs.LinuxSeccomp) (*seccomp.Filter, error) {
	c := seccomp.Cache{Dir: filepath.Join(r.Root, seccompCacheDir)}
	f, res, err := c.Compile(s)
	if err != nil {
		return nil, fmt.Errorf("linux.seccomp: %w", err)
	}
	switch res {
	case seccomp.Cached:
		r.debug("seccomp filter from cache", "instructions", len(f.Program))
	case seccomp.Recovered:
		r.warn("seccomp cache entry was corrupt: recompiled", "dir", c.Dir)
	default:
		// Skipped names are normal: profiles list syscalls newer than
		// the tables (and than many kernels).
		r.debug("seccomp filter compiled", "instructions", len(f.Program), "skipped", f.Notes)
	}
	return f, nil
}

// withoutSeccomp returns a copy of s without linux.seccomp, for the init:
// it gets the compiled filter, and decoding the profile again costs time.
func withoutSeccomp(s *specs.Spec) *specs.Spec {
	c := *s
	l := *s.Linux
	l.Seccomp = nil
	c.Linux = &l
	return &c
}

// seccompHandoff answers the init's msgSeccomp: it copies the listener fd
// out of process pid, sends it with the process state to the profile's
// listenerPath, and lets the init go on.
func seccompHandoff(p *spawned, m message, s *specs.LinuxSeccomp, st specs.State) error {
	if s == nil || s.ListenerPath == "" {
		return fmt.Errorf("sync: unexpected seccomp listener fd")
	}
	fd, err := seccomp.FetchListener(p.pid, m.Fd)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	cps := &specs.ContainerProcessState{
		Version:  specs.Version,
		Fds:      []string{specs.SeccompFdName},
		Pid:      p.pid,
		Metadata: s.ListenerMetadata,
		State:    st,
	}
	if err := seccomp.SendListener(s.ListenerPath, cps, fd); err != nil {
		return err
	}
	return p.send(message{Type: msgSeccompDone})
}

// installSeccomp installs the process's filter (init side). A listener
// fd is reported on the sync socket and kept open until the runtime has
// copied it; write(2) is the one syscall the filter may not notify.
func installSeccomp(f *seccomp.Filter, sync *os.File, dec *json.Decoder) error {
	fd, err := f.Install()
	if err != nil {
		return err
	}
	if fd < 0 {
		return nil
	}
	defer unix.Close(fd)
	b, _ := json.Marshal(message{Type: msgSeccomp, Fd: fd})
	if _, err := sync.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("report seccomp listener: %w", err)
	}
	var m message
	if err := dec.Decode(&m); err != nil || m.Type != msgSeccompDone {
		if err == nil && m.Type == msgError {
			return fmt.Errorf("seccomp listener: %s", m.Msg)
		}
		return fmt.Errorf("wait for seccomp listener hand-off: %v (%q)", err, m.Type)
	}
	return nil
}

// finishWithSeccomp drops to the process's identity (finishProcess) and
// installs its seccomp filter: after the drop when no_new_privs is set, so
// that the fewest syscalls run under the filter; before it otherwise,
// while the process still holds CAP_SYS_ADMIN, which seccomp(2) then
// needs (runc's order).
//
// Fds are marked close-on-exec first, before any filter: profiles older
// than close_range(2) (runtime-tools', Docker's before 2020) deny it.
func finishWithSeccomp(c *initConfig, sync *os.File, dec *json.Decoder) error {
	p := c.Spec.Process
	if err := markCloseOnExec(c.PreserveFds); err != nil {
		return err
	}
	cwdDone := false
	if c.Seccomp != nil && !p.NoNewPrivileges {
		// The cwd is entered and checked (getcwd) before the filter, which
		// may deny getcwd: as root, as runc does first; if root may not
		// enter it, finishProcess tries again as the process user.
		if p.Cwd != "" && unix.Chdir(p.Cwd) == nil {
			if err := verifyCwd(p.Cwd); err != nil {
				return err
			}
			cwdDone = true
		}
		if err := installSeccomp(c.Seccomp, sync, dec); err != nil {
			return err
		}
	}
	if err := finishProcess(p, cwdDone); err != nil {
		return err
	}
	if c.Seccomp != nil && p.NoNewPrivileges {
		return installSeccomp(c.Seccomp, sync, dec)
	}
	return nil
}
