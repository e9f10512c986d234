package integration

// Incompatibilities found by driving cove-runc through real clients
// (tests/clients): each test here reproduces what a client sends, without
// the client.

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// removeParentCgroups removes the parent of cgPath in every hierarchy, at
// cleanup; register it before newEnv so it runs after the container's
// own cgroup is gone.
func removeParentCgroups(t *testing.T, cgPath string) {
	t.Cleanup(func() {
		for _, c := range []string{"memory", "cpu", "pids", "unified", "cpuset", "cpuacct", "devices", "freezer", "blkio", "systemd", "hugetlb", "net_cls", "perf_event"} {
			os.Remove(filepath.Join(cgroupMount(c), filepath.Dir(cgPath)))
		}
	})
}

// Docker 20.10 writes "blockIO": {"weight": 0} and "cpu": {"shares": 0}
// when no --blkio-weight or --cpu-shares was given; runc treats both zeros
// as unset. cove-runc wrote 0 to blkio.bfq.weight and create failed with
// ERANGE, so every `docker run --runtime cove` failed.
func TestCCDockerZeroWeights(t *testing.T) {
	cgPath := "/cove-cc-" + strconv.Itoa(os.Getpid()) + "/zero"
	removeParentCgroups(t, cgPath)
	e := newEnv(t, []string{"sleep", "1000"}, func(s *specs.Spec) {
		s.Linux.CgroupsPath = cgPath
		s.Linux.Resources = &specs.LinuxResources{
			Memory:  &specs.LinuxMemory{Limit: ptr(int64(64 << 20)), Swap: ptr(int64(128 << 20)), DisableOOMKiller: ptr(false)},
			CPU:     &specs.LinuxCPU{Shares: ptr(uint64(0))},
			Pids:    &specs.LinuxPids{Limit: ptr(int64(50))},
			BlockIO: &specs.LinuxBlockIO{Weight: ptr(uint16(0)), LeafWeight: ptr(uint16(0))},
		}
	})
	e.mustRuntime("run", "-d", "--bundle", e.bundle, "cc-zero")
	pid := int(e.state("cc-zero")["pid"].(float64))
	if cgroupMount("pids") == "/sys/fs/cgroup" {
		return // pure v2: the create succeeding is the point
	}
	if got := readTrim(t, filepath.Join(containerCgroup(t, pid, "pids"), "pids.max")); got != "50" {
		t.Errorf("pids.max %s, want 50", got)
	}
	if got := readTrim(t, filepath.Join(containerCgroup(t, pid, "memory"), "memory.limit_in_bytes")); got != strconv.Itoa(64<<20) {
		t.Errorf("memory.limit_in_bytes %s, want %d", got, 64<<20)
	}
	blkio := containerCgroup(t, pid, "blkio")
	for _, f := range []string{"blkio.weight", "blkio.bfq.weight"} {
		if b, err := os.ReadFile(filepath.Join(blkio, f)); err == nil {
			if v := strings.TrimSpace(string(b)); strings.HasPrefix(v, "0") {
				t.Errorf("%s = %q: a zero weight was written", f, v)
			}
		}
	}
}

// Docker keeps runtime state in EXEC_ROOT/runtime-runc/moby/ID with
// 64-hex ids; with /var/run/docker, or a test's exec root, the exec
// socket's path ran past the 108 bytes of a unix socket address and
// create failed with EINVAL on bind. create and start must work whatever
// the length of the state directory's path.
func TestCCLongStatePath(t *testing.T) {
	e := newEnv(t, []string{"sleep", "1000"}, nil)
	e.root = filepath.Join(e.root, "runtime-runc", strings.Repeat("m", 60))
	id := "cc-" + strings.Repeat("0123456789abcdef", 4)
	if n := len(filepath.Join(e.root, id, "exec.sock")); n <= 108 {
		t.Fatalf("socket path only %d bytes long", n)
	}
	e.mustRuntime("create", "--bundle", e.bundle, id)
	if st := e.state(id)["status"]; st != "created" {
		t.Fatalf("after create: %v, want created", st)
	}
	e.mustRuntime("start", id)
	st := e.state(id)
	if st["status"] != "running" {
		t.Fatalf("after start: %v, want running", st["status"])
	}
	if pid := int(st["pid"].(float64)); !alive(pid) {
		t.Errorf("pid %d not alive after start", pid)
	}
	e.mustRuntime("delete", "--force", id)
}

// Podman decides whether a runtime can checkpoint by running
// `RUNTIME checkpoint --help` and checking that it exits 0; runc's
// `VERB --help` does. cove-runc exited 1, so `podman container checkpoint`
// refused with "configured runtime does not support checkpoint/restore".
func TestCCVerbHelp(t *testing.T) {
	needRoot(t)
	root := t.TempDir()
	for _, verb := range []string{"create", "start", "run", "state", "kill", "delete", "list", "ps", "exec",
		"pause", "resume", "update", "events", "features", "checkpoint", "restore", "spec"} {
		for _, flag := range []string{"--help", "-h"} {
			cmd := exec.Command(runtimeBin, "--root", root, verb, flag)
			cmd.Dir = root
			out, err := cmd.CombinedOutput()
			if err != nil || !strings.Contains(string(out), verb) {
				t.Errorf("cove-runc %s %s: %v: %s", verb, flag, err, out)
			}
		}
	}
	if entries, _ := os.ReadDir(root); len(entries) != 0 {
		t.Errorf("--help left %d entries in the root and working directory", len(entries))
	}
}

// `docker update --memory 80m --memory-swap 160m` pipes this to
// `RUNTIME update --resources -`: zeros for everything not asked for.
// cove-runc refused "weight": 0 as outside 10-1000 (docker update failed)
// and would write "reservation": 0 as a soft limit of 0; runc treats both
// zeros as unset.
func TestCCDockerUpdate(t *testing.T) {
	cgPath := "/cove-cc-" + strconv.Itoa(os.Getpid()) + "/update"
	removeParentCgroups(t, cgPath)
	e := newEnv(t, []string{"sleep", "1000"}, func(s *specs.Spec) {
		s.Linux.CgroupsPath = cgPath
		s.Linux.Resources = &specs.LinuxResources{
			Memory: &specs.LinuxMemory{Limit: ptr(int64(64 << 20)), Swap: ptr(int64(128 << 20))},
		}
	})
	e.mustRuntime("run", "-d", "--bundle", e.bundle, "cc-update")
	const update = `{"memory":{"limit":83886080,"reservation":0,"swap":167772160,"kernel":0},` +
		`"cpu":{"shares":0,"quota":0,"period":0},"blockIO":{"weight":0}}`
	cmd := exec.Command(runtimeBin, "--root", e.root, "update", "--resources", "-", "cc-update")
	cmd.Stdin = strings.NewReader(update)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("update --resources - with Docker's zeros: %v: %s", err, out)
	}
	if cgroupMount("memory") == "/sys/fs/cgroup" {
		return
	}
	mem := containerCgroup(t, int(e.state("cc-update")["pid"].(float64)), "memory")
	if got := readTrim(t, filepath.Join(mem, "memory.limit_in_bytes")); got != strconv.Itoa(80<<20) {
		t.Errorf("memory.limit_in_bytes %s, want %d", got, 80<<20)
	}
	if got := readTrim(t, filepath.Join(mem, "memory.soft_limit_in_bytes")); got == "0" {
		t.Errorf("memory.soft_limit_in_bytes 0: a zero reservation was written")
	}
}

// Podman on cgroup v1 runs containers without a cgroup namespace, so the
// "cgroup" mount is a bind of the container's directory in each host
// hierarchy. CRIU refused to dump those binds ("./sys/fs/cgroup/systemd
// doesn't have a proper root mount") and `podman container checkpoint`
// failed; runc declares them external mounts. After restore the binds
// must show the restored container's own cgroup, limit included.
func TestCCCheckpointCgroupBinds(t *testing.T) {
	criu := crCriu(t)
	const limit = 96 << 20
	e := newEnv(t, sh(`i=0; while :; do i=$((i+1)); echo $i > /count; sleep 0.05; done`), func(s *specs.Spec) {
		withoutNamespace(specs.CgroupNamespace)(s)
		s.Linux.Resources = &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr(int64(limit))}}
	})
	if cgroupMount("memory") == "/sys/fs/cgroup" {
		t.Skip("pure cgroup v2 host: the cgroup mount is no bind")
	}
	id, img := "cc-cgbinds", filepath.Join(t.TempDir(), "img")
	count := filepath.Join(e.bundle, "rootfs", "count")
	e.mustRuntime("run", "-d", "--bundle", e.bundle, id)
	crWaitFor(t, "the counter", func() bool { return crCount(count) >= 5 })
	if out := e.mustRuntime("exec", id, "cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes"); strings.TrimSpace(out) != strconv.Itoa(limit) {
		t.Fatalf("before checkpoint: the container sees memory limit %q, want %d", out, limit)
	}
	e.mustCr(criu, "checkpoint", "--image-path", img, id)
	dumped := crCount(count)
	e.mustRuntime("delete", id)
	e.mustCr(criu, "restore", "-d", "--bundle", e.bundle, "--image-path", img, id)
	crWaitFor(t, "the restored counter", func() bool { return crCount(count) >= dumped+5 })
	pid := crPid(e, id)
	if out := e.mustRuntime("exec", id, "cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes"); strings.TrimSpace(out) != strconv.Itoa(limit) {
		t.Errorf("after restore: the container sees memory limit %q, want %d", out, limit)
	}
	// The bind shows the restored cgroup: its tasks list the restored init.
	out := e.mustRuntime("exec", id, "cat", "/sys/fs/cgroup/memory/cgroup.procs")
	if !slices.Contains(strings.Fields(out), "1") {
		t.Errorf("after restore: /sys/fs/cgroup/memory/cgroup.procs in the container lacks pid 1 (host pid %d): %q", pid, out)
	}
	e.mustRuntime("delete", "--force", id)
}

// Docker and containerd leave HOME out of the process env, Podman's exec
// passes it empty; runc sets it from the container's /etc/passwd for the
// process's uid ("/" when the uid has no entry), for the init and for
// exec. cove-runc left it unset.
func TestCCHome(t *testing.T) {
	for _, tc := range []struct {
		name string
		uid  uint32
		env  []string
		want string
	}{
		{"root", 0, nil, "/root"},
		{"user", 1000, nil, "/tmp"},
		{"no-passwd-entry", 4242, nil, "/"},
		{"given", 1000, []string{"HOME=/given"}, "/given"},
		{"empty", 1000, []string{"HOME="}, "/tmp"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, sh(`echo "home=$HOME"`), func(s *specs.Spec) {
				s.Process.User.UID, s.Process.User.GID = tc.uid, tc.uid
				s.Process.Env = append([]string{"PATH=/bin"}, tc.env...)
			})
			if out := e.mustRun("cc-home-" + tc.name); strings.TrimSpace(out) != "home="+tc.want {
				t.Errorf("init: %q, want home=%s", out, tc.want)
			}
		})
	}
	e := newEnv(t, []string{"sleep", "1000"}, func(s *specs.Spec) { s.Process.Env = []string{"PATH=/bin"} })
	e.mustRuntime("run", "-d", "--bundle", e.bundle, "cc-home-exec")
	if out := e.mustRuntime("exec", "--user", "1000:1000", "cc-home-exec", "sh", "-c", `echo "home=$HOME"`); strings.TrimSpace(out) != "home=/tmp" {
		t.Errorf("exec as 1000: %q, want home=/tmp", out)
	}
	p := filepath.Join(t.TempDir(), "process.json")
	os.WriteFile(p, []byte(`{"args":["sh","-c","echo home=$HOME"],"env":["PATH=/bin"],"cwd":"/","user":{"uid":0,"gid":0}}`), 0o644)
	if out := e.mustRuntime("exec", "--process", p, "cc-home-exec"); strings.TrimSpace(out) != "home=/root" {
		t.Errorf("exec --process as root: %q, want home=/root", out)
	}
}

// runc makes /dev/core -> /proc/kcore only where the kernel has a
// /proc/kcore; cove-runc made it always, a dangling link on this kernel
// (seen as an extra /dev entry under Docker).
func TestCCDevCore(t *testing.T) {
	e := newEnv(t, sh(`[ -L /dev/core ] && echo link || echo none`), nil)
	want := "none"
	if _, err := os.Stat("/proc/kcore"); err == nil {
		want = "link"
	}
	if out := strings.TrimSpace(e.mustRun("cc-devcore")); out != want {
		t.Errorf("/dev/core: %s, want %s (host /proc/kcore exists: %v)", out, want, want == "link")
	}
}

// Engines turn the runtime's error text into the exit status of `docker
// run` / `podman run`: "executable file not found" or "no such file or
// directory" is 127, "permission denied" 126, anything else 125. For a
// directory as the command, runc (and execve) say permission denied;
// cove-runc said "is a directory", so docker run IMAGE /etc exited 125
// instead of 126.
func TestCCExecErrorText(t *testing.T) {
	for _, tc := range []struct {
		arg, want string
	}{
		{"/etc", "permission denied"},
		{"/etc/passwd", "permission denied"},
		{"nope", "executable file not found"},
		{"/nope", "no such file or directory"},
	} {
		e := newEnv(t, []string{tc.arg}, nil)
		out, err := e.runtime("run", "--bundle", e.bundle, "cc-execerr")
		if err == nil || !strings.Contains(out, tc.want) {
			t.Errorf("run %s: %v, %q: want an error saying %q", tc.arg, err, out, tc.want)
		}
	}
}

// docker exec's process.json carries "oomScoreAdj": 0; runc applies it
// to the exec'd process, cove-runc left it with its caller's score (the
// shim's 1), seen as a different /proc/self/oom_score_adj.
func TestCCExecOOMScoreAdj(t *testing.T) {
	e := newEnv(t, []string{"sleep", "1000"}, nil)
	e.mustRuntime("run", "-d", "--bundle", e.bundle, "cc-oomexec")
	p := filepath.Join(t.TempDir(), "process.json")
	os.WriteFile(p, []byte(`{"args":["cat","/proc/self/oom_score_adj"],"cwd":"/","user":{"uid":0,"gid":0},"oomScoreAdj":0}`), 0o644)
	// The caller's score is 3; the process must get the 0 it asks for.
	cmd := exec.Command("sh", "-c", `echo 3 > /proc/self/oom_score_adj && exec "$@"`, "sh", runtimeBin, "--root", e.root, "exec", "--process", p, "cc-oomexec")
	out, err := cmd.CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "0" {
		t.Errorf("exec with oomScoreAdj 0 from a caller at 3: %v, %q, want 0", err, out)
	}
}

// An engine (Docker's libnetwork, CNI) puts a veth into the container's
// network namespace; its peer stays in the host. runc never dumps network
// devices (the engine sets them up again from its hooks); cove-runc
// dumped the veth and CRIU could not restore it ("Unknown peer net
// namespace"), so docker start --checkpoint failed. A namespace with more
// than lo is now dumped and restored empty, as with runc.
func TestCCCheckpointEngineNetwork(t *testing.T) {
	criu := crCriu(t)
	e := newEnv(t, sh(`i=0; while :; do i=$((i+1)); echo $i > /count; sleep 0.05; done`), nil)
	id, img := "cc-cknet", filepath.Join(t.TempDir(), "img")
	count := filepath.Join(e.bundle, "rootfs", "count")
	e.mustRuntime("run", "-d", "--bundle", e.bundle, id)
	pid := crPid(e, id)
	host, peer := fmt.Sprintf("cc%d", os.Getpid()%100000), "cc-eth0"
	if out, err := exec.Command("ip", "link", "add", host, "type", "veth", "peer", "name", peer).CombinedOutput(); err != nil {
		t.Fatalf("ip link add: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "link", "del", host).Run() })
	if out, err := exec.Command("ip", "link", "set", peer, "netns", strconv.Itoa(pid)).CombinedOutput(); err != nil {
		t.Fatalf("move %s into the container: %v: %s", peer, err, out)
	}
	crWaitFor(t, "the counter", func() bool { return crCount(count) >= 5 })
	e.mustCr(criu, "checkpoint", "--image-path", img, id)
	dumped := crCount(count)
	e.mustRuntime("delete", id)
	e.mustCr(criu, "restore", "-d", "--bundle", e.bundle, "--image-path", img, id)
	crWaitFor(t, "the restored counter", func() bool { return crCount(count) >= dumped+5 })
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/dev", crPid(e, id)))
	if err != nil || strings.Contains(string(b), peer) {
		t.Errorf("restored netns devices (%v):\n%s\nwant no %s: the engine sets its devices up again", err, b, peer)
	}
	e.mustRuntime("delete", "--force", id)
}

// Docker makes its data root a shared mount, so a container's root (rslave
// by default) is a slave of that peer group, and CRIU restores the
// slavery by copying the group from the restore root. cove-runc made that
// root private and CRIU failed ("Failed to copy sharing ... Invalid
// argument"); runc leaves it in the group, cove-runc now makes it a slave.
func TestCCCheckpointSharedRootfs(t *testing.T) {
	criu := crCriu(t)
	e := newEnv(t, sh(`i=0; while :; do i=$((i+1)); echo $i > /count; sleep 0.05; done`), nil)
	rootfs := filepath.Join(e.bundle, "rootfs")
	if out, err := exec.Command("mount", "--bind", rootfs, rootfs).CombinedOutput(); err != nil {
		t.Fatalf("bind rootfs: %v: %s", err, out)
	}
	// Registered after newEnv's cleanup: runs before it, so detach lazily.
	t.Cleanup(func() { unix.Unmount(rootfs, unix.MNT_DETACH) })
	if out, err := exec.Command("mount", "--make-shared", rootfs).CombinedOutput(); err != nil {
		t.Fatalf("make rootfs shared: %v: %s", err, out)
	}
	id, img := "cc-ckshared", filepath.Join(t.TempDir(), "img")
	count := filepath.Join(rootfs, "count")
	e.mustRuntime("run", "-d", "--bundle", e.bundle, id)
	crWaitFor(t, "the counter", func() bool { return crCount(count) >= 5 })
	e.mustCr(criu, "checkpoint", "--image-path", img, id)
	dumped := crCount(count)
	e.mustRuntime("delete", id)
	e.mustCr(criu, "restore", "-d", "--bundle", e.bundle, "--image-path", img, id)
	crWaitFor(t, "the restored counter", func() bool { return crCount(count) >= dumped+5 })
	e.mustRuntime("delete", "--force", id)
}

// podman container restore --import restores a checkpoint into a new
// container, whose fresh root lacks the mount points create had made for
// its binds (/etc/hosts in a busybox image). runc makes the missing mount
// points before calling CRIU; cove-runc did not and CRIU failed ("Can't
// stat mountpoint .../etc/hosts").
func TestCCRestoreFreshRootfs(t *testing.T) {
	criu := crCriu(t)
	hostDir := t.TempDir()
	hostFile := filepath.Join(hostDir, "hosts")
	os.WriteFile(hostFile, []byte("127.0.0.1 localhost\n"), 0o644)
	e := newEnv(t, sh(`i=0; while :; do i=$((i+1)); echo $i > /count; sleep 0.05; done`), func(s *specs.Spec) {
		s.Mounts = append(s.Mounts,
			specs.Mount{Destination: "/etc/cc-hosts", Type: "bind", Source: hostFile, Options: []string{"rbind", "ro"}},
			specs.Mount{Destination: "/cc-data/sub", Type: "bind", Source: hostDir, Options: []string{"rbind"}})
	})
	id, img := "cc-freshroot", filepath.Join(t.TempDir(), "img")
	e.mustRuntime("run", "-d", "--bundle", e.bundle, id)
	crWaitFor(t, "the counter", func() bool { return crCount(filepath.Join(e.bundle, "rootfs", "count")) >= 5 })
	e.mustCr(criu, "checkpoint", "--image-path", img, id)
	e.mustRuntime("delete", id)

	// A new bundle: the same config, a root without the mount points.
	fresh := filepath.Join(t.TempDir(), "bundle")
	if err := cloneTree(baseRootfs, filepath.Join(fresh, "rootfs")); err != nil {
		t.Fatal(err)
	}
	cfg, err := os.ReadFile(filepath.Join(e.bundle, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(fresh, "config.json"), cfg, 0o644)
	if _, err := os.Lstat(filepath.Join(fresh, "rootfs", "etc", "cc-hosts")); err == nil {
		t.Fatal("the fresh root has the mount point already")
	}
	e.mustCr(criu, "restore", "-d", "--bundle", fresh, "--image-path", img, id)
	crWaitFor(t, "the restored counter", func() bool { return crCount(filepath.Join(fresh, "rootfs", "count")) >= 3 })
	if out := e.mustRuntime("exec", id, "cat", "/etc/cc-hosts"); !strings.Contains(out, "localhost") {
		t.Errorf("bind mount in the restored container: %q", out)
	}
	e.mustRuntime("delete", "--force", id)
}
