package runtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/checkpoint-restore/go-criu/v7/rpc"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"

	"cove/internal/runtime/cgroups"
	"cove/internal/runtime/criu"
)

// CRIUOptions are the flags checkpoint and restore share.
type CRIUOptions struct {
	// CriuPath is the criu binary (runc's global --criu).
	CriuPath string
	// ImagePath holds the images (default ./checkpoint); WorkPath the logs
	// (default ImagePath).
	ImagePath, WorkPath string
	TCPEstablished      bool
	ExtUnixSk           bool
	ShellJob            bool
	FileLocks           bool
	LazyPages           bool
	// AutoDedup punches holes in the parent images' pages already dumped.
	AutoDedup bool
	// ManageCgroupsMode is soft, full, strict or ignore; "" is CRIU's default.
	ManageCgroupsMode string
	// EmptyNs lists namespaces (only "network") created empty on restore
	// instead of being dumped.
	EmptyNs []string
}

// CheckpointOptions are the checkpoint flags.
type CheckpointOptions struct {
	CRIUOptions
	ID           string
	LeaveRunning bool
	// PageServer is IP:PORT of a CRIU page server to send memory to.
	PageServer string
	// ParentPath is the previous (pre-dump) image directory, relative to
	// ImagePath.
	ParentPath string
	PreDump    bool
	// StatusFd, when >= 0, is an fd of ours CRIU writes "\0" to once the
	// lazy-pages server is ready.
	StatusFd int
}

// RestoreOptions are the restore flags.
type RestoreOptions struct {
	CRIUOptions
	// LSMProfile ("apparmor:NAME" or "selinux:CONTEXT") and
	// LSMMountContext replace the checkpointed process's and mounts' labels.
	LSMProfile, LSMMountContext string
	ID                          string
	Bundle                      string
	PidFile                     string
	ConsoleSocket               string
	Detach                      bool
	NoSubreaper                 bool
	NoPivot                     bool
}

const (
	descriptorsFile = "descriptors.json"
	criuRootDir     = "criu-root"
	// lazyPipeMax is what CRIU's lazy-pages transfer grows a pipe to; the
	// default fs.pipe-max-size (1 MiB) needs CAP_SYS_RESOURCE beyond it.
	lazyPipeMax = 4 << 20
)

var cgModes = map[string]rpc.CriuCgMode{
	"soft": rpc.CriuCgMode_SOFT, "full": rpc.CriuCgMode_FULL,
	"strict": rpc.CriuCgMode_STRICT, "ignore": rpc.CriuCgMode_IGNORE,
}

// Checkpoint dumps a running container's process tree into o.ImagePath
// with CRIU. Without LeaveRunning the container is stopped afterwards (and
// can be deleted); a failed checkpoint leaves it as it was.
func (r *Runtime) Checkpoint(o *CheckpointOptions) error {
	s, unlock, err := r.lockLoad(o.ID)
	if err != nil {
		return err
	}
	defer unlock()
	if st := s.Status(); st != StatusRunning && st != StatusPaused {
		return fmt.Errorf("cannot checkpoint container %q: it is %s, not running", o.ID, st)
	}
	if err := o.validate(); err != nil {
		return err
	}
	client := &criu.Client{Path: o.CriuPath}
	if _, err := client.Find(); err != nil {
		return fmt.Errorf("checkpoint container %q: %w", o.ID, err)
	}
	if err := checkFeatures(client, o.PreDump, o.LazyPages); err != nil {
		return err
	}
	opts, files, err := o.CRIUOptions.rpcOpts(true)
	if err != nil {
		return err
	}
	defer closeAll(files)
	opts.Pid = proto.Int32(int32(s.Pid))
	opts.LeaveRunning = proto.Bool(o.LeaveRunning || o.PreDump)
	opts.LogFile = proto.String("dump.log")
	opts.Root = proto.String(rootfsPath(s.Bundle, s.Spec))
	if o.ParentPath != "" {
		opts.ParentImg = proto.String(o.ParentPath)
	}
	if o.PreDump {
		opts.TrackMem = proto.Bool(true)
	}
	if o.PageServer != "" {
		ps, err := pageServer(o.PageServer)
		if err != nil {
			return err
		}
		opts.Ps = ps
	}
	if o.StatusFd >= 0 {
		opts.StatusFd = proto.Int32(int32(o.StatusFd))
	}
	// CRIU freezes the tree through the freezer cgroup rather than one
	// task at a time.
	if p, ok := s.CgroupPaths["freezer"]; ok {
		opts.FreezeCgroup = proto.String(p)
	} else if p, ok := s.CgroupPaths[cgroups.UnifiedKey]; ok && fileExists(filepath.Join(p, "cgroup.freeze")) {
		opts.FreezeCgroup = proto.String(p)
	}
	for _, m := range s.Spec.Mounts {
		if isBindMount(m) {
			// Bind mounts from the host are external: recorded by name,
			// given a source again on restore.
			opts.ExtMnt = append(opts.ExtMnt, &rpc.ExtMountMap{Key: proto.String(m.Destination), Val: proto.String(m.Destination)})
		}
	}
	// With a cgroup namespace the cgroup mounts are fresh ones, which CRIU
	// dumps itself (seen from here their root is the container's cgroup,
	// not "/", so only the spec tells them from binds).
	if !hasNamespace(s.Spec, specs.CgroupNamespace) {
		cgBinds, err := cgroupBindsExternal(s.Pid)
		if err != nil {
			return fmt.Errorf("cgroup mounts: %w", err)
		}
		opts.ExtMnt = append(opts.ExtMnt, cgBinds...)
	}
	for _, ns := range s.Spec.Linux.Namespaces {
		key, ok := externalNsKeys[ns.Type]
		if ns.Path == "" || !ok {
			continue
		}
		var st unix.Stat_t
		if err := unix.Stat(ns.Path, &st); err != nil {
			return fmt.Errorf("namespace %s: %w", ns.Path, err)
		}
		opts.External = append(opts.External, fmt.Sprintf("%s[%d]:%s", criuNsNames[ns.Type], st.Ino, key))
	}
	if opts.EmptyNs == nil {
		engine, err := engineNetwork(s.Spec, s.Pid)
		if err != nil {
			return err
		}
		if engine {
			opts.EmptyNs = proto.Uint32(unix.CLONE_NEWNET)
			if err := os.WriteFile(filepath.Join(o.ImagePath, emptyNetMarker), nil, 0o600); err != nil {
				return fmt.Errorf("checkpoint: %w", err)
			}
		}
	}
	if err := writeDescriptors(opts, s.Pid, o.ImagePath); err != nil {
		return err
	}
	typ := rpc.CriuReqType_DUMP
	if o.PreDump {
		typ = rpc.CriuReqType_PRE_DUMP
	}
	if o.LazyPages {
		undo, err := raisePipeMax()
		if err != nil {
			return err
		}
		defer undo()
	}
	r.debug("checkpoint", "id", o.ID, "pid", s.Pid, "images", o.ImagePath)
	_, err = client.Do(&criu.Call{Type: typ, Opts: opts})
	if err != nil {
		return r.criuError(client, fmt.Sprintf("checkpoint container %q", o.ID), err, filepath.Join(o.workDir(), "dump.log"))
	}
	return nil
}

// criuError wraps a failed CRIU call with the errors from its log, and with
// a hint when the CRIU binary is too old for this kernel.
func (r *Runtime) criuError(client *criu.Client, what string, err error, log string) error {
	if errors.Is(err, criu.ErrNotFound) {
		return fmt.Errorf("%s: %w", what, err)
	}
	msg := fmt.Sprintf("%s: %v", what, err)
	if l := criu.LogErrors(log, 4); l != "" {
		msg += " (" + log + ": " + l + ")"
	}
	if v, verr := client.Version(); verr == nil && v.Code() < 40200 {
		msg += fmt.Sprintf(" (CRIU %s is older than 4.2: 3.x fails on recent kernels and 4.1 cannot dump TCP sockets on Linux 6.18; see .ci/criu.sh)", v)
	}
	return errors.New(msg)
}

// checkFeatures fails when the kernel or CRIU lack what a flag needs, with
// the kernel feature named.
func checkFeatures(client *criu.Client, preDump, lazy bool) error {
	if !preDump && !lazy {
		return nil
	}
	want := &rpc.CriuFeatures{}
	if preDump {
		want.MemTrack = proto.Bool(true)
	}
	if lazy {
		want.LazyPages = proto.Bool(true)
	}
	got, err := client.Features(want)
	if err != nil {
		return err
	}
	if preDump && !got.GetMemTrack() {
		return errors.New("--pre-dump: this kernel cannot track dirty memory: it lacks CONFIG_MEM_SOFT_DIRTY (soft-dirty page bits), which CRIU's iterative pre-dump needs")
	}
	if lazy && !got.GetLazyPages() {
		return errors.New("--lazy-pages: this kernel lacks userfaultfd (CONFIG_USERFAULTFD with non-cooperative events), which CRIU's lazy restore needs")
	}
	return nil
}

// rpcOpts builds the options both operations share and opens the image and
// work directories (the image directory is created on dump).
func (o *CRIUOptions) rpcOpts(dump bool) (*rpc.CriuOpts, []*os.File, error) {
	if err := o.validate(); err != nil {
		return nil, nil, err
	}
	if dump {
		if err := os.MkdirAll(o.ImagePath, 0o700); err != nil {
			return nil, nil, fmt.Errorf("--image-path: %w", err)
		}
	}
	img, err := os.Open(o.ImagePath)
	if err != nil {
		return nil, nil, fmt.Errorf("--image-path: %w", err)
	}
	files := []*os.File{img}
	if err := os.MkdirAll(o.workDir(), 0o700); err != nil {
		closeAll(files)
		return nil, nil, fmt.Errorf("--work-path: %w", err)
	}
	work, err := os.Open(o.workDir())
	if err != nil {
		closeAll(files)
		return nil, nil, fmt.Errorf("--work-path: %w", err)
	}
	files = append(files, work)
	opts := &rpc.CriuOpts{
		ImagesDirFd:     proto.Int32(int32(img.Fd())),
		WorkDirFd:       proto.Int32(int32(work.Fd())),
		LogLevel:        proto.Int32(4),
		ManageCgroups:   proto.Bool(true),
		NotifyScripts:   proto.Bool(true),
		OrphanPtsMaster: proto.Bool(true),
		TcpEstablished:  proto.Bool(o.TCPEstablished),
		ExtUnixSk:       proto.Bool(o.ExtUnixSk),
		ShellJob:        proto.Bool(o.ShellJob),
		FileLocks:       proto.Bool(o.FileLocks),
		LazyPages:       proto.Bool(o.LazyPages),
		AutoDedup:       proto.Bool(o.AutoDedup),
	}
	if o.ManageCgroupsMode != "" {
		opts.ManageCgroupsMode = cgModes[o.ManageCgroupsMode].Enum()
	}
	if len(o.EmptyNs) > 0 {
		opts.EmptyNs = proto.Uint32(unix.CLONE_NEWNET)
	}
	return opts, files, nil
}

// validate checks the flags that need no CRIU to judge, and makes the
// image path absolute (default ./checkpoint, as runc).
func (o *CRIUOptions) validate() error {
	if o.ImagePath == "" {
		o.ImagePath = "checkpoint"
	}
	p, err := filepath.Abs(o.ImagePath)
	if err != nil {
		return fmt.Errorf("--image-path: %w", err)
	}
	o.ImagePath = p
	if _, ok := cgModes[o.ManageCgroupsMode]; o.ManageCgroupsMode != "" && !ok {
		return fmt.Errorf("--manage-cgroups-mode %q: want soft, full, strict or ignore", o.ManageCgroupsMode)
	}
	for _, ns := range o.EmptyNs {
		if ns != "network" {
			return fmt.Errorf("--empty-ns %q: only network is supported", ns)
		}
	}
	return nil
}

func (o *CRIUOptions) workDir() string {
	if o.WorkPath != "" {
		return o.WorkPath
	}
	return o.ImagePath
}

// externalNsKeys names the namespaces that, joined by path, stay outside the
// checkpoint: CRIU records them by inode and is given them back on restore.
var externalNsKeys = map[specs.LinuxNamespaceType]string{
	specs.NetworkNamespace: "extRootNetNS",
	specs.PIDNamespace:     "extRootPidNS",
}

var criuNsNames = map[specs.LinuxNamespaceType]string{
	specs.NetworkNamespace: "net",
	specs.PIDNamespace:     "pid",
}

// writeDescriptors records where the init's stdio points
// (descriptors.json, as runc writes it), so restore can hand new files in.
// Pipes are named "pipe:[inode]". Files on host mounts, outside the
// container's mount namespace (a log file, the host's /dev/null), are
// marked external for CRIU and named by its key "file[mnt_id:inode]";
// runc cannot checkpoint those at all.
func writeDescriptors(opts *rpc.CriuOpts, pid int, dir string) error {
	mounts, err := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", pid))
	if err != nil {
		return fmt.Errorf("read mounts of %d: %w", pid, err)
	}
	ids := map[string]bool{}
	for _, l := range strings.Split(string(mounts), "\n") {
		if f := strings.Fields(l); len(f) > 0 {
			ids[f[0]] = true
		}
	}
	descs := make([]string, 3)
	for i := range descs {
		fd := fmt.Sprintf("/proc/%d/fd/%d", pid, i)
		l, err := os.Readlink(fd)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("read stdio of %d: %w", pid, err)
		}
		descs[i] = l
		if !strings.HasPrefix(l, "/") {
			continue // pipe:[...], socket:[...], anon_inode:...
		}
		mnt, err := fdMountID(pid, i)
		if err != nil || ids[mnt] {
			continue
		}
		var st unix.Stat_t
		if err := unix.Stat(fd, &st); err != nil {
			return fmt.Errorf("stat stdio of %d: %w", pid, err)
		}
		id, _ := strconv.Atoi(mnt)
		key := fmt.Sprintf("file[%x:%x]", id, st.Ino)
		opts.External = append(opts.External, key)
		descs[i] = key
	}
	b, _ := json.Marshal(descs)
	return writeFileAtomic(filepath.Join(dir, descriptorsFile), b, 0o600)
}

// fdMountID returns the mount id of pid's fd from /proc/<pid>/fdinfo.
func fdMountID(pid, fd int) (string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/fdinfo/%d", pid, fd))
	if err != nil {
		return "", err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "mnt_id:"); ok {
			return strings.TrimSpace(v), nil
		}
	}
	return "", errors.New("no mnt_id in fdinfo")
}

// raisePipeMax raises fs.pipe-max-size to what CRIU's lazy-pages transfer
// needs (root lacks CAP_SYS_RESOURCE on some hosts) and returns a function
// that puts the old value back.
func raisePipeMax() (func(), error) {
	const path = "/proc/sys/fs/pipe-max-size"
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--lazy-pages: %w", err)
	}
	old := strings.TrimSpace(string(b))
	if n, err := strconv.Atoi(old); err == nil && n >= lazyPipeMax {
		return func() {}, nil
	}
	if err := os.WriteFile(path, []byte(strconv.Itoa(lazyPipeMax)), 0); err != nil {
		return nil, fmt.Errorf("--lazy-pages: raise fs.pipe-max-size: %w", err)
	}
	return func() { os.WriteFile(path, []byte(old), 0) }, nil
}

func pageServer(addr string) (*rpc.CriuPageServerInfo, error) {
	i := strings.LastIndexByte(addr, ':')
	if i < 0 {
		return nil, fmt.Errorf("--page-server %q: want IP:PORT", addr)
	}
	port, err := strconv.Atoi(addr[i+1:])
	if err != nil || port <= 0 || port > 65535 {
		return nil, fmt.Errorf("--page-server %q: bad port", addr)
	}
	return &rpc.CriuPageServerInfo{Address: proto.String(strings.Trim(addr[:i], "[]")), Port: proto.Int32(int32(port))}, nil
}

func rootfsPath(bundleDir string, spec *specs.Spec) string {
	if filepath.IsAbs(spec.Root.Path) {
		return spec.Root.Path
	}
	return filepath.Join(bundleDir, spec.Root.Path)
}

func hasNamespace(spec *specs.Spec, typ specs.LinuxNamespaceType) bool {
	if spec == nil || spec.Linux == nil {
		return false
	}
	for _, ns := range spec.Linux.Namespaces {
		if ns.Type == typ {
			return true
		}
	}
	return false
}

func isBindMount(m specs.Mount) bool {
	if m.Type == "bind" {
		return true
	}
	for _, o := range m.Options {
		if o == "bind" || o == "rbind" {
			return true
		}
	}
	return false
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func closeAll(files []*os.File) {
	for _, f := range files {
		f.Close()
	}
}
