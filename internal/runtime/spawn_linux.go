package runtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	_ "cove/internal/runtime/nsexec" // the pre-runtime namespace stage
)

// message is one JSON line on the sync socket between the runtime and the
// process it spawned (first the nsexec stage, then the Go init).
type message struct {
	Type string          `json:"type"`
	Pid  int             `json:"pid,omitempty"`
	Msg  string          `json:"msg,omitempty"`
	Fd   int             `json:"fd,omitempty"` // msgSeccomp: the listener fd's number in the sender
	Init json.RawMessage `json:"init,omitempty"`
}

// Message types.
const (
	msgError     = "error"
	msgIDMap     = "idmap"
	msgPid       = "pid"
	msgConfig    = "config"
	msgHooks     = "hooks"     // init: run prestart and createRuntime hooks now
	msgHooksDone = "hooksdone" // runtime: hooks ran
	msgReady     = "ready"     // init: set up, waiting for start
	msgStart     = "start"     // runtime: exec the process now
)

// nsFlags maps runtime-spec namespace types to clone flags.
var nsFlags = map[specs.LinuxNamespaceType]int{
	specs.PIDNamespace:     unix.CLONE_NEWPID,
	specs.NetworkNamespace: unix.CLONE_NEWNET,
	specs.MountNamespace:   unix.CLONE_NEWNS,
	specs.IPCNamespace:     unix.CLONE_NEWIPC,
	specs.UTSNamespace:     unix.CLONE_NEWUTS,
	specs.UserNamespace:    unix.CLONE_NEWUSER,
	specs.CgroupNamespace:  unix.CLONE_NEWCGROUP,
	specs.TimeNamespace:    unix.CLONE_NEWTIME,
}

// spawnRequest describes a process to start in a set of namespaces.
type spawnRequest struct {
	Join        []specs.LinuxNamespace // namespaces joined by path
	Clone       int                    // CLONE_NEW* flags of new namespaces
	TimeOffsets map[string]specs.LinuxTimeOffset
	UIDMappings []specs.LinuxIDMapping
	GIDMappings []specs.LinuxIDMapping
	// Place puts the first-stage process into the container's cgroup
	// before it does anything.
	Place func(pid int) error
	Stdin io.Reader
	Stdout,
	Stderr io.Writer
	// Files are passed to the child as fds 3, 4, ...; the sync socket comes
	// after them.
	Files []*os.File
}

// spawned is a process started by spawn, stopped in its init, connected by
// the sync socket.
type spawned struct {
	pid  int
	sync *os.File
	dec  *json.Decoder
	// SyncFd is the sync socket's fd number in the child.
	syncFd int
}

// send writes one message to the child.
func (p *spawned) send(m message) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	_, err = p.sync.Write(append(b, '\n'))
	return err
}

// recv reads the next message; an error message from the child becomes an
// error. io.EOF means the child closed the socket (exec succeeded or it died).
func (p *spawned) recv() (message, error) {
	var m message
	if err := p.dec.Decode(&m); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, unix.ECONNRESET) {
			return m, io.EOF
		}
		return m, fmt.Errorf("read sync socket: %w", err)
	}
	if m.Type == msgError {
		return m, errors.New(m.Msg)
	}
	return m, nil
}

// expect reads the next message and checks its type.
func (p *spawned) expect(typ string) (message, error) {
	m, err := p.recv()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return m, fmt.Errorf("container init exited before %q", typ)
		}
		return m, err
	}
	if m.Type != typ {
		return m, fmt.Errorf("sync: got message %q, want %q", m.Type, typ)
	}
	return m, nil
}

// spawn starts the runtime binary again as "init" through the nsexec stage
// and returns once the final process exists in every namespace and in the
// cgroup. The process is the caller's child (CLONE_PARENT).
func spawn(r *spawnRequest) (*spawned, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("socketpair: %w", err)
	}
	parent := os.NewFile(uintptr(fds[0]), "sync-parent")
	child := os.NewFile(uintptr(fds[1]), "sync-child")
	defer child.Close()

	syncFd := 3 + len(r.Files)
	env := []string{
		"_COVE_INIT=1",
		"_COVE_SYNCFD=" + strconv.Itoa(syncFd),
		"_COVE_CLONE=" + strconv.Itoa(r.Clone),
	}
	if len(r.Join) > 0 {
		var b strings.Builder
		for _, ns := range r.Join {
			fmt.Fprintf(&b, "%s:%s\n", ns.Type, ns.Path)
		}
		env = append(env, "_COVE_JOIN="+b.String())
	}
	if len(r.TimeOffsets) > 0 {
		var b strings.Builder
		for clock, off := range r.TimeOffsets {
			fmt.Fprintf(&b, "%s %d %d\n", clock, off.Secs, off.Nanosecs)
		}
		env = append(env, "_COVE_TIMENS="+b.String())
	}
	// Never re-exec the host file: a container could write it through
	// /proc/PID/exe (CVE-2019-5736).
	self, _, err := sealedSelf()
	if err != nil {
		parent.Close()
		return nil, err
	}
	defer self.Close()
	files := append(append([]*os.File{}, r.Files...), child)
	exe, selfDup, err := execPath(self, 3+len(files))
	if err != nil {
		parent.Close()
		return nil, err
	}
	defer selfDup.Close()
	cmd := &exec.Cmd{
		Path:       exe,
		Args:       []string{"cove-runc", "init"},
		Env:        env,
		Stdin:      r.Stdin,
		Stdout:     r.Stdout,
		Stderr:     r.Stderr,
		ExtraFiles: files,
	}
	if err := cmd.Start(); err != nil {
		parent.Close()
		return nil, fmt.Errorf("start init: %w", err)
	}
	p := &spawned{sync: parent, dec: json.NewDecoder(parent), syncFd: syncFd}
	fail := func(err error) (*spawned, error) {
		cmd.Process.Kill()
		cmd.Wait()
		if p.pid > 0 {
			unix.Kill(p.pid, unix.SIGKILL)
			unix.Wait4(p.pid, nil, 0, nil)
		}
		parent.Close()
		return nil, err
	}
	stage1 := cmd.Process.Pid
	if r.Place != nil {
		if err := r.Place(stage1); err != nil {
			return fail(err)
		}
	}
	if _, err := parent.Write([]byte("go\n")); err != nil {
		return fail(fmt.Errorf("sync: %w", err))
	}
	for p.pid == 0 {
		m, err := p.recv()
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = errors.New("namespace stage exited without reporting a pid")
			}
			return fail(fmt.Errorf("spawn: %w", err))
		}
		switch m.Type {
		case msgIDMap:
			if err := writeIDMaps(stage1, r.UIDMappings, r.GIDMappings); err != nil {
				return fail(err)
			}
			if _, err := parent.Write([]byte("idmap-done\n")); err != nil {
				return fail(fmt.Errorf("sync: %w", err))
			}
		case msgPid:
			p.pid = m.Pid
		default:
			return fail(fmt.Errorf("spawn: unexpected message %q", m.Type))
		}
	}
	if err := cmd.Wait(); err != nil {
		return fail(fmt.Errorf("namespace stage: %w", err))
	}
	return p, nil
}

func writeIDMaps(pid int, uids, gids []specs.LinuxIDMapping) error {
	write := func(file string, maps []specs.LinuxIDMapping) error {
		var b strings.Builder
		for _, m := range maps {
			fmt.Fprintf(&b, "%d %d %d\n", m.ContainerID, m.HostID, m.Size)
		}
		path := fmt.Sprintf("/proc/%d/%s", pid, file)
		if err := os.WriteFile(path, []byte(b.String()), 0); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
		return nil
	}
	if err := write("uid_map", uids); err != nil {
		return err
	}
	return write("gid_map", gids)
}
