package runtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/checkpoint-restore/go-criu/v7/rpc"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"

	"cove/internal/runtime/bundle"
	"cove/internal/runtime/cgroups"
	"cove/internal/runtime/console"
	"cove/internal/runtime/criu"
	"cove/internal/runtime/hooks"
)

// Restore recreates container o.ID from the images in o.ImagePath and the
// bundle's config.json: a fresh state directory and cgroup (with the
// bundle's resources), namespaces and mounts as CRIU recorded them, state
// running. Without Detach it waits for the process like run and returns
// its exit status.
func (r *Runtime) Restore(o *RestoreOptions) (int, error) {
	if err := o.validate(); err != nil {
		return -1, err
	}
	if _, err := os.Stat(filepath.Join(o.ImagePath, "inventory.img")); err != nil {
		return -1, fmt.Errorf("restore: %s is not a checkpoint image directory: %w", o.ImagePath, err)
	}
	client := &criu.Client{Path: o.CriuPath}
	if _, err := client.Find(); err != nil {
		return -1, err
	}
	if err := checkFeatures(client, false, o.LazyPages); err != nil {
		return -1, err
	}
	spec, err := bundle.Load(o.Bundle)
	if err != nil {
		return -1, err
	}
	if spec.Linux == nil {
		return -1, errors.New("config.json: linux: required on this platform")
	}
	bundleDir, err := filepath.Abs(o.Bundle)
	if err != nil {
		return -1, fmt.Errorf("bundle %s: %w", o.Bundle, err)
	}
	if spec.Process.Terminal && o.ConsoleSocket == "" && o.Detach {
		return -1, errors.New("process.terminal is true: --console-socket is required when the container is detached")
	}
	descs, err := readDescriptors(o.ImagePath)
	if err != nil {
		return -1, err
	}
	var sigs chan os.Signal
	if !o.Detach {
		sigs = make(chan os.Signal, 32)
		signal.Notify(sigs)
		defer signal.Stop(sigs)
	}

	// runc removes a container once it is checkpointed; cove-runc keeps it,
	// stopped, until deleted. So that `checkpoint ID; restore ID` works as
	// with runc, a stopped container of that id gives way.
	if old, err := r.Load(o.ID); err == nil && old.Status() == StatusStopped {
		if err := r.Delete(o.ID, false); err != nil {
			return -1, fmt.Errorf("restore: replace stopped container %q: %w", o.ID, err)
		}
	}
	dir, unlock, err := r.newContainer(o.ID)
	if err != nil {
		return -1, err
	}
	st := &State{ID: o.ID, Bundle: bundleDir, Rootfs: spec.Root.Path, Created: time.Now().UTC(),
		Annotations: spec.Annotations, Spec: spec, dir: dir}
	// Without a console socket (foreground restore) the pty master comes
	// to us, and we copy it to our stdio as run does.
	var master *os.File
	pid, err := r.restore(o, client, st, descs, &master)
	if err != nil {
		if master != nil {
			master.Close()
		}
		r.destroy(st)
		unlock()
		return -1, err
	}
	r.debug("container restored", "id", o.ID, "pid", pid, "cgroups", st.CgroupPaths)
	r.poststart(st)
	unlock()
	if o.Detach {
		return 0, nil
	}
	if master != nil {
		defer master.Close()
	}
	code := waitForward(pid, sigs, master)
	if s, unlock, err := r.lockLoad(o.ID); err == nil {
		if err := r.destroy(s); err != nil {
			r.warn("delete after restore", "id", o.ID, "error", err)
		}
		unlock()
	}
	return code, nil
}

// restore runs CRIU for Restore once the state directory exists and
// returns the restored init's pid. On error the caller destroys st.
func (r *Runtime) restore(o *RestoreOptions, client *criu.Client, st *State, descs []string, master **os.File) (int, error) {
	spec := st.Spec
	cg, err := cgroups.New(spec.Linux.CgroupsPath, o.ID)
	if err != nil {
		return 0, fmt.Errorf("linux.cgroupsPath: %w", err)
	}
	st.CgroupPaths = cg.Paths()
	if err := st.save(); err != nil {
		return 0, err
	}
	if err := cg.Create(); err != nil {
		return 0, err
	}
	if err := makeRestoreMountpoints(rootfsPath(st.Bundle, spec), st.Bundle, spec); err != nil {
		return 0, err
	}
	root, err := mountCriuRoot(st.dir, rootfsPath(st.Bundle, spec))
	if err != nil {
		return 0, err
	}
	defer unmountCriuRoot(root)

	opts, files, err := o.CRIUOptions.rpcOpts(false)
	if err != nil {
		return 0, err
	}
	defer closeAll(files)
	if opts.EmptyNs == nil && fileExists(filepath.Join(o.ImagePath, emptyNetMarker)) {
		opts.EmptyNs = proto.Uint32(unix.CLONE_NEWNET) // dumped without devices
	}
	opts.LogFile = proto.String("restore.log")
	opts.Root = proto.String(root)
	// The restored init becomes our child (like a created one is ours
	// until we exit), so a foreground restore can wait for it.
	opts.RstSibling = proto.Bool(true)
	if o.LSMProfile != "" {
		opts.LsmProfile = proto.String(o.LSMProfile)
	}
	if o.LSMMountContext != "" {
		opts.LsmMountContext = proto.String(o.LSMMountContext)
	}
	call := &criu.Call{Type: rpc.CriuReqType_RESTORE, Opts: opts, Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr}
	for _, m := range spec.Mounts {
		if isBindMount(m) {
			src := m.Source
			if !filepath.IsAbs(src) {
				src = filepath.Join(st.Bundle, src)
			}
			opts.ExtMnt = append(opts.ExtMnt, &rpc.ExtMountMap{Key: proto.String(m.Destination), Val: proto.String(src)})
		}
	}
	for _, ns := range spec.Linux.Namespaces {
		key, ok := externalNsKeys[ns.Type]
		if ns.Path == "" || !ok {
			continue
		}
		f, err := os.Open(ns.Path)
		if err != nil {
			return 0, fmt.Errorf("namespace %s: %w", ns.Path, err)
		}
		defer f.Close()
		opts.InheritFd = append(opts.InheritFd, &rpc.InheritFd{Key: proto.String(key), Fd: proto.Int32(criu.ExtraFd(len(call.ExtraFiles)))})
		call.ExtraFiles = append(call.ExtraFiles, f)
	}
	// Stdio pipes and host files of the checkpointed process become ours
	// (CRIU's 0-2).
	for i, d := range descs {
		if i < 3 && (strings.HasPrefix(d, "pipe:") || strings.HasPrefix(d, "file[")) {
			opts.InheritFd = append(opts.InheritFd, &rpc.InheritFd{Key: proto.String(d), Fd: proto.Int32(int32(i))})
		}
	}
	// CRIU runs in the container's new cgroup, limits set, and puts the
	// restored tree there: the checkpointed cgroup root maps to this one.
	call.Started = func(pid int) error {
		if err := cg.Apply(pid); err != nil {
			return err
		}
		if err := cg.Set(effectiveResources(spec)); err != nil {
			return fmt.Errorf("linux.resources: %w", err)
		}
		roots, err := cgroupRoots(pid)
		if err != nil {
			return err
		}
		opts.CgRoot = roots
		cgBinds, err := cgroupBindsRestore(spec, pid)
		if err != nil {
			return fmt.Errorf("cgroup mounts: %w", err)
		}
		opts.ExtMnt = append(opts.ExtMnt, cgBinds...)
		return nil
	}
	var pid int
	call.Notify = func(n *criu.Notification) error {
		switch n.Script {
		case "setup-namespaces":
			return r.restoreHooks(st, n.Pid)
		case "orphan-pts-master":
			if n.File == nil {
				return errors.New("no pty master passed")
			}
			if o.ConsoleSocket == "" {
				*master = n.File
				return nil
			}
			defer n.File.Close()
			return sendConsole(o.ConsoleSocket, n.File)
		case "post-restore":
			pid = n.Pid
			return r.recordRestored(st, pid, o.PidFile)
		}
		if n.File != nil {
			n.File.Close()
		}
		return nil
	}
	if o.LazyPages {
		undo, err := raisePipeMax()
		if err != nil {
			return 0, err
		}
		defer undo()
	}
	resp, err := client.Do(call)
	if err != nil {
		return 0, r.criuError(client, fmt.Sprintf("restore container %q", o.ID), err, filepath.Join(o.workDir(), "restore.log"))
	}
	if pid == 0 {
		pid = int(resp.GetRestore().GetPid())
		if err := r.recordRestored(st, pid, o.PidFile); err != nil {
			return 0, err
		}
	}
	return pid, nil
}

// restoreHooks runs the prestart and createRuntime hooks once CRIU has made
// the namespaces, as create does before pivot_root.
func (r *Runtime) restoreHooks(st *State, pid int) error {
	h := st.Spec.Hooks
	if h == nil {
		return nil
	}
	s := st.OCI()
	s.Status = specs.StateCreating
	s.Pid = pid
	//lint:ignore SA1019 prestart is deprecated but still honoured
	if err := hooks.Run(h.Prestart, &s); err != nil {
		return fmt.Errorf("prestart hook: %w", err)
	}
	if err := hooks.Run(h.CreateRuntime, &s); err != nil {
		return fmt.Errorf("createRuntime hook: %w", err)
	}
	return nil
}

// recordRestored writes the restored init into the state: from now on the
// container is running.
func (r *Runtime) recordRestored(st *State, pid int, pidFile string) error {
	start, _, err := procStart(pid)
	if err != nil {
		return fmt.Errorf("restored init %d: %w", pid, err)
	}
	st.Pid, st.PidStart, st.Ready = pid, start, true
	if err := st.save(); err != nil {
		return err
	}
	if pidFile != "" {
		if err := writeFileAtomic(pidFile, []byte(strconv.Itoa(pid)), 0o644); err != nil {
			return fmt.Errorf("--pid-file: %w", err)
		}
	}
	return nil
}

func readDescriptors(dir string) ([]string, error) {
	b, err := os.ReadFile(filepath.Join(dir, descriptorsFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil // a checkpoint by another tool: no stdio to map
	}
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	var descs []string
	if err := json.Unmarshal(b, &descs); err != nil {
		return nil, fmt.Errorf("restore: %s: %w", descriptorsFile, err)
	}
	return descs, nil
}

// cgroupRoots lists the cgroups of pid (CRIU, placed in the container's
// cgroup) per hierarchy: the roots the restored tree goes under.
func cgroupRoots(pid int) ([]*rpc.CgroupRoot, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return nil, err
	}
	var roots []*rpc.CgroupRoot
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.SplitN(line, ":", 3)
		if len(f) != 3 {
			continue
		}
		if f[1] == "" {
			// cgroup2 ("0::/path"): the root for every controller not
			// named, which on a pure v2 host is all of them.
			roots = append(roots, &rpc.CgroupRoot{Path: proto.String(f[2])})
			continue
		}
		for _, ctrl := range strings.Split(f[1], ",") {
			roots = append(roots, &rpc.CgroupRoot{Ctrl: proto.String(ctrl), Path: proto.String(f[2])})
		}
	}
	return roots, nil
}

// mountCriuRoot bind-mounts the container's rootfs at dir/criu-root, a
// slave mount that CRIU builds the restored mount namespace on.
func mountCriuRoot(dir, rootfs string) (string, error) {
	root := filepath.Join(dir, criuRootDir)
	if err := os.Mkdir(root, 0o700); err != nil {
		return "", fmt.Errorf("restore root: %w", err)
	}
	if err := unix.Mount(rootfs, root, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return "", fmt.Errorf("bind %s: %w", rootfs, err)
	}
	// A slave, not private: when the rootfs sits on a shared mount (Docker
	// makes its data root shared), the container's mounts were slaves of
	// that peer group and CRIU restores that by copying the group from
	// here (EINVAL from a private mount). A slave still sends nothing back.
	if err := unix.Mount("", root, "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
		unmountCriuRoot(root)
		return "", fmt.Errorf("make %s a slave: %w", root, err)
	}
	return root, nil
}

func unmountCriuRoot(root string) {
	unix.Unmount(root, unix.MNT_DETACH)
	os.Remove(root)
}

// sendConsole passes a restored container's pty master to the caller's
// console socket.
func sendConsole(path string, master *os.File) error {
	conn, err := console.Dial(path)
	if err != nil {
		return fmt.Errorf("--console-socket: %w", err)
	}
	defer conn.Close()
	return console.SendFd(conn, master)
}
