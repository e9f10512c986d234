package engine

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"cove/internal/engine/container"
	"cove/internal/engine/specgen"
	"cove/internal/runtime/console"
)

// ExecOptions are `cove exec`'s flags.
type ExecOptions struct {
	Args       []string
	Env        []string
	User       string
	Workdir    string
	Tty        bool
	Stdin      bool
	Detach     bool
	Privileged bool
	// Stdio of the process when not detached.
	In       io.Reader
	Out, Err io.Writer
	// TTY is the caller's terminal for -t (raw mode, size); may be nil.
	TTY *os.File
}

// Exec runs a process in the running container through `runtime exec`
// and returns its exit code.
func (e *Engine) Exec(r *container.Record, o ExecOptions) (int, error) {
	st := e.State(r)
	if !st.Running {
		return 125, fmt.Errorf("container %s: %w", r.Name, ErrNotRunning)
	}
	if st.Paused {
		return 125, fmt.Errorf("container %s is paused", r.Name)
	}
	run := e.RunDir(r.ID)
	b, err := os.ReadFile(filepath.Join(run, "config.json"))
	if err != nil {
		return 125, fmt.Errorf("read spec of %s: %w", r.Name, err)
	}
	var spec specs.Spec
	if err := json.Unmarshal(b, &spec); err != nil {
		return 125, fmt.Errorf("decode spec of %s: %w", r.Name, err)
	}
	p := *spec.Process
	p.Args = o.Args
	p.Terminal = o.Tty
	p.ConsoleSize = nil
	for _, kv := range o.Env {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			var found bool
			if v, found = os.LookupEnv(k); !found {
				continue
			}
		}
		p.Env = setEnv(p.Env, k, v)
	}
	if o.Tty && !hasEnv(p.Env, "TERM") {
		p.Env = append(p.Env, "TERM=xterm")
	}
	if o.Workdir != "" {
		p.Cwd = o.Workdir
	}
	if o.User != "" {
		u, err := specgen.ResolveUser(spec.Root.Path, o.User, nil)
		if err != nil {
			return 126, err
		}
		p.User = u
	}
	if o.Privileged {
		caps, _ := specgen.Capabilities(true, nil, nil)
		p.Capabilities = &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps}
	}
	f, err := os.CreateTemp(run, "exec-*.json")
	if err != nil {
		return 125, err
	}
	defer os.Remove(f.Name())
	if err := json.NewEncoder(f).Encode(&p); err != nil {
		f.Close()
		return 125, err
	}
	f.Close()
	args := []string{"exec", "--process", f.Name()}
	if o.Detach {
		args = append(args, "--detach")
	}
	var ln *net.UnixListener
	if o.Tty {
		// A short private directory: socket paths are limited to 108 bytes.
		sdir, err := os.MkdirTemp("", "cove-exec-")
		if err != nil {
			return 125, err
		}
		defer os.RemoveAll(sdir)
		sock := filepath.Join(sdir, "console.sock")
		ln, err = net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
		if err != nil {
			return 125, fmt.Errorf("console socket: %w", err)
		}
		defer ln.Close()
		args = append(args, "--tty", "--console-socket", sock)
	}
	args = append(args, r.ID)
	cmd, err := e.runtimeCmd(r, args...)
	if err != nil {
		return 125, err
	}
	var stderr strings.Builder
	if o.Detach || o.Tty {
		cmd.Stderr = &stderr
	} else {
		cmd.Stdout, cmd.Stderr = o.Out, io.MultiWriter(o.Err, &stderr)
		if o.Stdin {
			cmd.Stdin = o.In
		}
	}
	if err := cmd.Start(); err != nil {
		return 125, fmt.Errorf("start runtime: %w", err)
	}
	done := make(chan struct{})
	if o.Tty {
		go func() {
			defer close(done)
			e.proxyConsole(ln, o)
		}()
	} else {
		close(done)
	}
	err = cmd.Wait()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
	}
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			return 125, err
		}
		code = ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			code = 128 + int(ws.Signal())
		}
		msg := strings.ToLower(stderr.String())
		if strings.Contains(msg, "executable file not found") || strings.Contains(msg, "no such file or directory") && strings.Contains(msg, "exec") {
			return 127, fmt.Errorf("%s", strings.TrimSpace(stderr.String()))
		}
		if strings.Contains(msg, "permission denied") && strings.Contains(msg, "exec") {
			return 126, fmt.Errorf("%s", strings.TrimSpace(stderr.String()))
		}
		if o.Detach && code != 0 {
			return 125, fmt.Errorf("exec: %s", strings.TrimSpace(stderr.String()))
		}
	}
	return code, nil
}

// proxyConsole receives the exec's pty master and copies it to and from
// the caller's stdio, with the caller's terminal in raw mode.
func (e *Engine) proxyConsole(ln *net.UnixListener, o ExecOptions) {
	ln.SetDeadline(time.Now().Add(30 * time.Second))
	c, err := ln.AcceptUnix()
	if err != nil {
		return
	}
	cf, err := c.File()
	c.Close()
	if err != nil {
		return
	}
	master, err := console.RecvFd(cf)
	cf.Close()
	if err != nil {
		return
	}
	if o.TTY != nil {
		if rows, cols, err := console.Size(o.TTY); err == nil {
			console.SetSize(master, rows, cols)
		}
	}
	var in io.Reader
	if o.Stdin {
		in = o.In
	}
	console.Copy(master, in, o.Out)
}

func hasEnv(env []string, k string) bool {
	for _, e := range env {
		if strings.HasPrefix(e, k+"=") {
			return true
		}
	}
	return false
}

func setEnv(env []string, k, v string) []string {
	for i, e := range env {
		if strings.HasPrefix(e, k+"=") {
			env[i] = k + "=" + v
			return env
		}
	}
	return append(env, k+"="+v)
}
