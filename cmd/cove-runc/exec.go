package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"cove/internal/runtime"
)

// listFlag collects a repeatable flag (-e A=1 -e B=2).
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func cmdExec(g *globals, args []string) (int, error) {
	fs := flag.NewFlagSet("exec", flag.ContinueOnError)
	o := &runtime.ExecOptions{}
	var env, caps, gids listFlag
	var processFile, cwd, user, label, apparmor string
	var tty, noNewPrivs bool
	fs.StringVar(&o.ConsoleSocket, "console-socket", "", "")
	fs.StringVar(&o.PidFile, "pid-file", "", "")
	fs.IntVar(&o.PreserveFds, "preserve-fds", 0, "")
	boolVar(fs, &o.Detach, "detach", "d")
	boolVar(fs, &tty, "tty", "t")
	stringVar(fs, &processFile, "", "process", "p")
	fs.StringVar(&cwd, "cwd", "", "")
	stringVar(fs, &user, "", "user", "u")
	for _, n := range []string{"env", "e"} {
		fs.Var(&env, n, "")
	}
	for _, n := range []string{"cap", "c"} {
		fs.Var(&caps, n, "")
	}
	for _, n := range []string{"additional-gids", "g"} {
		fs.Var(&gids, n, "")
	}
	fs.StringVar(&label, "process-label", "", "")
	fs.StringVar(&apparmor, "apparmor", "", "")
	fs.BoolVar(&noNewPrivs, "no-new-privs", false, "")
	fs.BoolVar(&o.IgnorePaused, "ignore-paused", false, "")
	// Flags stop at the container id: what follows is the command.
	if err := fs.Parse(args); err != nil {
		return 1, fmt.Errorf("exec: %w", err)
	}
	rest := fs.Args()
	if len(rest) == 0 {
		return 1, errors.New("exec: expected a container id")
	}
	o.ID, rest = rest[0], rest[1:]
	p, err := execProcess(g, o.ID, processFile, rest)
	if err != nil {
		return 1, err
	}
	if processFile == "" {
		if err := applyExecFlags(p, env, caps, gids, cwd, user, tty, noNewPrivs); err != nil {
			return 1, err
		}
	}
	o.Process = p
	return g.runtime().Exec(o)
}

// execProcess is the process to run: the --process file as it stands, or
// the container's own process with the given command.
func execProcess(g *globals, id, file string, cmd []string) (*specs.Process, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("exec: --process: %w", err)
		}
		p := &specs.Process{}
		if err := json.Unmarshal(b, p); err != nil {
			return nil, fmt.Errorf("exec: --process %s: %w", file, err)
		}
		if len(p.Args) == 0 {
			return nil, fmt.Errorf("exec: --process %s: args: empty", file)
		}
		return p, nil
	}
	if len(cmd) == 0 {
		return nil, errors.New("exec: expected a command after the container id")
	}
	s, err := g.runtime().State(id)
	if err != nil {
		return nil, err
	}
	base := specs.Process{}
	if s.Spec != nil && s.Spec.Process != nil {
		base = *s.Spec.Process
	}
	base.Args = cmd
	base.Terminal = false
	base.ConsoleSize = nil
	return &base, nil
}

// applyExecFlags applies runc's inline exec flags to p.
func applyExecFlags(p *specs.Process, env, caps, gids listFlag, cwd, user string, tty, nnp bool) error {
	for _, e := range env {
		name, _, ok := strings.Cut(e, "=")
		if !ok || name == "" {
			return fmt.Errorf("exec: --env %q: want NAME=VALUE", e)
		}
		p.Env = setEnv(p.Env, name, e)
	}
	if cwd != "" {
		p.Cwd = cwd
	}
	if user != "" {
		u, gs, _ := strings.Cut(user, ":")
		uid, err := strconv.ParseUint(u, 10, 32)
		if err != nil {
			return fmt.Errorf("exec: --user %q: want UID[:GID]", user)
		}
		p.User.UID = uint32(uid)
		if gs != "" {
			gid, err := strconv.ParseUint(gs, 10, 32)
			if err != nil {
				return fmt.Errorf("exec: --user %q: want UID[:GID]", user)
			}
			p.User.GID = uint32(gid)
		}
	}
	for _, g := range gids {
		gid, err := strconv.ParseUint(g, 10, 32)
		if err != nil {
			return fmt.Errorf("exec: --additional-gids %q: not a number", g)
		}
		p.User.AdditionalGids = append(p.User.AdditionalGids, uint32(gid))
	}
	if len(caps) > 0 {
		if p.Capabilities == nil {
			p.Capabilities = &specs.LinuxCapabilities{}
		}
		// Not inheritable or ambient: that would pass them across execve
		// of unprivileged programs (CVE-2022-29162).
		c := p.Capabilities
		c.Bounding = append(c.Bounding, caps...)
		c.Effective = append(c.Effective, caps...)
		c.Permitted = append(c.Permitted, caps...)
	}
	p.Terminal = tty
	if nnp {
		p.NoNewPrivileges = true
	}
	return nil
}

// setEnv replaces or appends NAME=... in env.
func setEnv(env []string, name, entry string) []string {
	for i, e := range env {
		if strings.HasPrefix(e, name+"=") {
			env[i] = entry
			return env
		}
	}
	return append(env, entry)
}
