package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"cove/internal/engine/container"
	"cove/internal/engine/image"
	"cove/internal/engine/monitor"
	"cove/internal/engine/snapshot"
	"cove/internal/engine/specgen"
)

// ExitError is a failure with a docker exit code (125 engine, 126 cannot
// invoke, 127 not found).
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string { return e.Err.Error() }
func (e *ExitError) Unwrap() error { return e.Err }

// Create stores a new container from opts: the image (pulled when missing
// unless --pull never), a writable snapshot, and the record with its name.
// A crash part-way leaves at most a labelled active snapshot that
// `cove system check` removes.
func (e *Engine) Create(ctx context.Context, o *RunOptions) (*container.Record, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	imgs, err := e.Images()
	if err != nil {
		return nil, err
	}
	trace("images opened")
	img, err := imgs.Get(o.Image)
	if o.Pull == "always" || (errors.Is(err, image.ErrNotFound) && o.Pull != "never") {
		img, err = imgs.Pull(ctx, o.Image, image.PullOptions{})
	}
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", o.Image, err)
	}
	rt, err := e.RuntimePath(o.Runtime)
	if err != nil {
		return nil, err
	}
	o.Runtime = rt
	// Resolve KEY-only -e entries now, from this process's environment.
	var env []string
	for _, kv := range o.Env {
		if !strings.Contains(kv, "=") {
			if v, ok := os.LookupEnv(kv); ok {
				env = append(env, kv+"="+v)
			}
			continue
		}
		env = append(env, kv)
	}
	o.Env = env
	args, err := specgen.Command(img.Config.Config, o.Entrypoint, o.Args)
	if err != nil {
		return nil, &ExitError{Code: 125, Err: err}
	}
	id := container.NewID()
	name := o.Name
	if name == "" {
		name = container.RandomName(id)
	} else if !container.ValidName(name) {
		return nil, fmt.Errorf("invalid container name %q", name)
	}
	if o.Hostname == "" && o.UtsMode != "host" {
		o.Hostname = id[:12]
	}
	if err := e.prepareVolumes(id, o); err != nil {
		return nil, &ExitError{Code: 125, Err: err}
	}
	raw, err := encodeOptions(o)
	if err != nil {
		e.releaseVolumes(id, o, true)
		return nil, err
	}
	rec := &container.Record{
		ID: id, Name: name, Image: o.Image, ImageID: img.ID(), Created: time.Now().UTC(),
		Labels: o.Labels, Annotations: o.Annotations, Args: args, Options: raw,
	}
	if len(img.ChainIDs) > 0 {
		rec.ChainID = img.ChainIDs[len(img.ChainIDs)-1]
	}
	snaps, err := e.Snapshots()
	if err != nil {
		return nil, err
	}
	popts, err := o.snapshotOptions()
	if err != nil {
		e.releaseVolumes(id, o, true)
		return nil, err
	}
	popts = append(popts, snapshot.WithLabels(map[string]string{"cove.container": id}))
	if err := snaps.Prepare(id, rec.ChainID, popts...); err != nil {
		e.releaseVolumes(id, o, true)
		return nil, storageError(&o.StorageOptions, fmt.Errorf("prepare container layer: %w", err))
	}
	trace("layer prepared")
	crashPoint("create:prepared")
	if err := e.Containers.Create(rec); err != nil {
		snaps.RemoveActive(id)
		e.releaseVolumes(id, o, true)
		return nil, err
	}
	trace("recorded")
	e.emit("container", "create", id, map[string]string{"name": name, "image": o.Image})
	crashPoint("create:recorded")
	return rec, nil
}

// Started is what Start returns.
type Started struct {
	Pid int
	// Attach is the attach connection requested by StartOptions.Attach,
	// connected before the container started so no output is lost.
	Attach net.Conn
}

// StartOptions configure Start.
type StartOptions struct {
	// Attach asks for an attach connection (foreground run, start -a).
	Attach bool
	// Claim makes the attached client responsible for cleanup after the
	// exit (the supervisor then skips `cove container cleanup`).
	Claim bool
}

// lock takes the container's flock (on its directory, so no lock file
// can race with the directory's removal); release with the returned func.
func (e *Engine) lock(id string) (func(), error) {
	fd, err := unix.Open(e.Containers.Path(id), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("lock container %s: %w", id[:12], err)
	}
	if err := unix.Flock(fd, unix.LOCK_EX); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("lock container %s: %w", id[:12], err)
	}
	return func() { unix.Close(fd) }, nil
}

// Start runs a created or exited container under a new supervisor.
func (e *Engine) Start(ctx context.Context, r *container.Record, so StartOptions) (*Started, error) {
	unlock, err := e.lock(r.ID)
	if err != nil {
		return nil, err
	}
	defer unlock()
	st := e.State(r)
	if st.Running {
		return nil, fmt.Errorf("container %s: %w", r.Name, ErrRunning)
	}
	if st.MonitorPid != 0 {
		return nil, fmt.Errorf("container %s is being restarted by its supervisor", r.Name)
	}
	o, err := Options(r.Options)
	if err != nil {
		return nil, err
	}
	// Leftovers of a previous run (a crash, a reboot).
	e.cleanupRun(r, o)
	run := e.RunDir(r.ID)
	if err := os.MkdirAll(run, 0o700); err != nil {
		return nil, fmt.Errorf("create %s: %w", run, err)
	}
	fail := func(err error) (*Started, error) {
		e.cleanupRun(r, o)
		return nil, err
	}
	rootfs := filepath.Join(run, "rootfs")
	if err := os.Mkdir(rootfs, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return fail(fmt.Errorf("create rootfs dir: %w", err))
	}
	snaps, err := e.Snapshots()
	if err != nil {
		return fail(err)
	}
	if err := snaps.Mount(r.ID, rootfs); err != nil {
		return fail(fmt.Errorf("mount container layer: %w", err))
	}
	trace("mounted")
	crashPoint("start:mounted")
	spec, err := e.spec(r, o, rootfs)
	if err != nil {
		return fail(&ExitError{Code: 125, Err: err})
	}
	b, err := json.Marshal(spec)
	if err != nil {
		return fail(fmt.Errorf("encode spec: %w", err))
	}
	if err := os.WriteFile(filepath.Join(run, "config.json"), b, 0o600); err != nil {
		return fail(fmt.Errorf("write spec: %w", err))
	}
	os.Remove(e.Containers.ExitPath(r.ID))
	// A start by the user begins a new restart count.
	os.Remove(filepath.Join(e.Containers.Path(r.ID), monitor.RestartFile))
	trace("spec written")
	crashPoint("start:spec")
	pid, conn, err := e.spawnMonitor(r, o, so)
	if err != nil {
		if pid == 0 && conn == nil {
			// The supervisor reported the failure and exits; it did not
			// run the cleanup callback for a start that never ran.
			e.waitMonitorGone(r.ID, 5*time.Second)
			e.cleanupRun(r, o)
		}
		return nil, err
	}
	return &Started{Pid: pid, Attach: conn}, nil
}

func (e *Engine) waitMonitorGone(id string, d time.Duration) {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		p, s := e.monitorProc(id)
		if p == 0 || !alive(p, s) {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// spec generates the container's OCI spec.
func (e *Engine) spec(r *container.Record, o *RunOptions, rootfs string) (*specs.Spec, error) {
	imgs, err := e.Images()
	if err != nil {
		return nil, err
	}
	img, err := imgs.Get(r.ImageID)
	if err != nil {
		return nil, fmt.Errorf("image %s of container %s: %w", r.Image, r.Name, err)
	}
	so := o.Options
	so.Environ = func(string) (string, bool) { return "", false }
	so.JoinNS = map[specs.LinuxNamespaceType]string{}
	parent := o.CgroupParent
	if parent == "" {
		parent = "/cove"
	}
	so.CgroupsPath = filepath.Join(parent, r.ID)
	for typ, mode := range map[specs.LinuxNamespaceType]string{specs.PIDNamespace: o.PidMode, specs.IPCNamespace: o.IpcMode, specs.UTSNamespace: o.UtsMode} {
		p, err := e.nsPath(mode, string(typ))
		if err != nil {
			return nil, err
		}
		if p != "" {
			so.JoinNS[typ] = p
		}
	}
	net, err := e.networkSetup(r, o)
	if err != nil {
		return nil, err
	}
	if net != "" {
		so.JoinNS[specs.NetworkNamespace] = net
	}
	if so.Init {
		so.InitBinary = initBinary()
	}
	files, err := e.etcFiles(r, o)
	if err != nil {
		return nil, err
	}
	so.Mounts = append(files, so.Mounts...)
	vm, err := e.volumeMounts(context.Background(), r, o, rootfs)
	if err != nil {
		return nil, err
	}
	so.Mounts = append(so.Mounts, vm...)
	return specgen.Generate(img.Config.Config, rootfs, so)
}

func initBinary() string {
	for _, p := range []string{"/usr/bin/tini-static", "/usr/bin/tini", "/usr/libexec/podman/catatonit", "/usr/bin/catatonit"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// nsPath resolves a namespace mode: "" (private), host, container:X.
func (e *Engine) nsPath(mode, typ string) (string, error) {
	switch {
	case mode == "" || mode == "private" || mode == "shareable":
		return "", nil
	case mode == "host":
		return "host", nil
	case strings.HasPrefix(mode, "container:"):
		other, err := e.Containers.Lookup(strings.TrimPrefix(mode, "container:"))
		if err != nil {
			return "", fmt.Errorf("--%s %s: %w", typ, mode, err)
		}
		st := e.State(other)
		if !st.Running {
			return "", fmt.Errorf("--%s %s: container is not running", typ, mode)
		}
		return "/proc/" + strconv.Itoa(st.Pid) + "/ns/" + typ, nil
	}
	return "", fmt.Errorf("namespace mode %q: want host or container:NAME", mode)
}

// etcFiles writes /etc/hostname, /etc/hosts and /etc/resolv.conf for the
// container into its run directory and returns their bind mounts.
func (e *Engine) etcFiles(r *container.Record, o *RunOptions) ([]specs.Mount, error) {
	run := e.RunDir(r.ID)
	host := o.Hostname
	if host == "" {
		host, _ = os.Hostname()
	}
	hosts := "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t" + host + "\n"
	for _, h := range o.AddHosts {
		name, ip, ok := strings.Cut(h, ":")
		if !ok {
			return nil, fmt.Errorf("--add-host %s: want NAME:IP", h)
		}
		hosts += ip + "\t" + name + "\n"
	}
	resolv, err := os.ReadFile("/etc/resolv.conf")
	if err != nil {
		resolv = nil
	}
	if h, rc, ok := e.netFiles(r, o, host); ok {
		hosts, resolv = string(h), rc
	}
	files := []struct{ name, dst, data string }{
		{"hostname", "/etc/hostname", host + "\n"},
		{"hosts", "/etc/hosts", hosts},
		{"resolv.conf", "/etc/resolv.conf", string(resolv)},
	}
	var ms []specs.Mount
	for _, f := range files {
		p := filepath.Join(run, f.name)
		if err := os.WriteFile(p, []byte(f.data), 0o644); err != nil {
			return nil, fmt.Errorf("write %s: %w", f.name, err)
		}
		ms = append(ms, specs.Mount{Destination: f.dst, Type: "bind", Source: p, Options: []string{"rbind", "rprivate"}})
	}
	return ms, nil
}

// spawnMonitor starts cove-monitor in its own session and waits for the
// first start's result.
func (e *Engine) spawnMonitor(r *container.Record, o *RunOptions, so StartOptions) (int, net.Conn, error) {
	mon, err := e.monitorPath()
	if err != nil {
		return 0, nil, err
	}
	run := e.RunDir(r.ID)
	restart, max, _ := RestartPolicy(o.Restart)
	logPath := e.Containers.LogPath(r.ID)
	if o.LogDriver == "none" {
		logPath = ""
	}
	tty, stdin := "0", "0"
	if o.Tty {
		tty = "1"
	}
	if o.Stdin {
		stdin = "1"
	}
	args := []string{
		"id=" + r.ID, "runtime=" + o.Runtime, "runtime-root=" + e.RuntimeRoot(o.Runtime),
		"bundle=" + run, "run-dir=" + run, "log=" + logPath, "exit=" + e.Containers.ExitPath(r.ID),
		"cove=" + e.cfg.Cove, "cove-root=" + e.cfg.Root, "tty=" + tty, "stdin=" + stdin,
		"restart=" + restart, "max-retries=" + strconv.Itoa(max),
	}
	sr, sw, err := os.Pipe()
	if err != nil {
		return 0, nil, err
	}
	defer sr.Close()
	cmd := exec.Command(mon, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	cmd.Env = append(os.Environ(), "GOGC=20", "GOMAXPROCS=1")
	cmd.ExtraFiles = []*os.File{sw}
	cmd.Dir = "/"
	var conn net.Conn
	if so.Attach {
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			sw.Close()
			return 0, nil, fmt.Errorf("attach socket: %w", err)
		}
		mine := os.NewFile(uintptr(fds[0]), "attach")
		theirs := os.NewFile(uintptr(fds[1]), "attach-monitor")
		conn, err = net.FileConn(mine)
		mine.Close()
		if err != nil {
			theirs.Close()
			sw.Close()
			return 0, nil, err
		}
		defer theirs.Close()
		cmd.ExtraFiles = append(cmd.ExtraFiles, theirs)
		if so.Claim {
			cmd.Args = append(cmd.Args, "first-claims=1")
		}
	}
	if err := cmd.Start(); err != nil {
		sw.Close()
		if conn != nil {
			conn.Close()
		}
		return 0, nil, fmt.Errorf("start cove-monitor: %w", err)
	}
	sw.Close()
	// Record the supervisor now (it writes the same itself): once our lock
	// is gone, even by a crash, others must see it as alive, not clean up
	// under it.
	mp := strconv.Itoa(cmd.Process.Pid) + " " + monitor.ProcStartTime(cmd.Process.Pid) + "\n"
	tmp := filepath.Join(run, monitor.MonitorFile+".cove")
	if os.WriteFile(tmp, []byte(mp), 0o600) == nil {
		// Only if the supervisor has not written it (or already removed
		// it on leaving: then the file is stale but names a process that
		// exits as soon as we hang up).
		os.Link(tmp, filepath.Join(run, monitor.MonitorFile))
		os.Remove(tmp)
	}
	crashPoint("start:monitor")
	// The supervisor lives on; we do not wait for it (it is reparented
	// when we exit). Reap it if it exits while we run.
	go cmd.Wait()
	buf := make([]byte, 4096)
	n, _ := readAll(sr, buf)
	line := strings.TrimSpace(string(buf[:n]))
	switch {
	case strings.HasPrefix(line, "ok "):
		trace("started")
		pid, _ := strconv.Atoi(strings.TrimPrefix(line, "ok "))
		return pid, conn, nil
	case strings.HasPrefix(line, "err "):
		if conn != nil {
			conn.Close()
		}
		codeS, msg, _ := strings.Cut(strings.TrimPrefix(line, "err "), " ")
		code, _ := strconv.Atoi(codeS)
		if code == 0 {
			code = 125
		}
		return 0, nil, &ExitError{Code: code, Err: fmt.Errorf("start container %s: %s", r.Name, msg)}
	}
	if conn != nil {
		conn.Close()
	}
	return 0, nil, fmt.Errorf("cove-monitor for %s exited without reporting", r.Name)
}

func readAll(f *os.File, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := f.Read(buf[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// cleanupRun undoes a run: the runtime's container, the rootfs mount, the
// run directory. It is idempotent and safe after a crash at any step.
// Preconditions: the supervisor is not alive (or never started).
func (e *Engine) cleanupRun(r *container.Record, o *RunOptions) {
	e.cleanupRunOpt(r, o, false)
}

// cleanupRunOpt is cleanupRun; with supervisorDeletes the runtime's state is
// left to the supervisor, which deletes it while its client cleans up.
func (e *Engine) cleanupRunOpt(r *container.Record, o *RunOptions, supervisorDeletes bool) {
	run := e.RunDir(r.ID)
	if o != nil && o.Runtime != "" && !supervisorDeletes {
		if _, err := os.Stat(filepath.Join(e.RuntimeRoot(o.Runtime), r.ID)); err == nil {
			exec.Command(o.Runtime, "--root", e.RuntimeRoot(o.Runtime), "delete", "--force", r.ID).Run()
		}
	}
	e.networkTeardown(r.ID)
	rootfs := filepath.Join(run, "rootfs")
	if snaps, err := e.Snapshots(); err == nil {
		if err := snaps.Unmount(rootfs); err != nil {
			unix.Unmount(rootfs, unix.MNT_DETACH)
		}
	}
	if _, err := os.Stat(run); err == nil {
		os.RemoveAll(run)
	}
}

// Cleanup is what the supervisor has cove do after the last exit: undo
// the run and, for --rm containers, remove the container.
func (e *Engine) Cleanup(r *container.Record) error { return e.cleanup(r, false) }

// CleanupAttached is Cleanup for the attached client that claimed the
// cleanup (foreground run, start -a): the supervisor deletes the runtime's
// state meanwhile.
func (e *Engine) CleanupAttached(r *container.Record) error { return e.cleanup(r, true) }

func (e *Engine) cleanup(r *container.Record, supervisorDeletes bool) error {
	unlock, err := e.lock(r.ID)
	if err != nil {
		return err
	}
	st := e.State(r)
	// An exited container whose supervisor will not restart it can be
	// cleaned up even while the supervisor finishes (deleting the runtime's
	// state, waiting for its client to hang up).
	if st.Running || st.MonitorPid != 0 && (st.Restarting || st.Status != StatusExited) {
		unlock()
		return nil
	}
	o, err := Options(r.Options)
	if err != nil {
		unlock()
		return err
	}
	e.cleanupRunOpt(r, o, supervisorDeletes)
	unlock()
	if o.AutoRemove {
		return e.remove(r, false, supervisorDeletes)
	}
	return nil
}
