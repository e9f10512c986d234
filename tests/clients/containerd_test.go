package clients

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

const (
	containerdBin = "/usr/bin/containerd"
	ctrBin        = "/usr/bin/ctr"
	shimBin       = "/usr/bin/containerd-shim-runc-v2"
)

// startContainerd starts a containerd with every path under dir and
// returns its socket. Without cri the CRI plugin is left out; tables is
// appended to the config (TOML).
func startContainerd(t *testing.T, dir string, cri bool, tables string) string {
	t.Helper()
	sock := filepath.Join(dir, "containerd.sock")
	top := ""
	if !cri {
		top = "disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n"
	}
	cfg := fmt.Sprintf(`version = 2
%sroot = %q
state = %q
[grpc]
  address = %q
[ttrpc]
  address = %q
[plugins."io.containerd.internal.v1.opt"]
  path = %q
`, top, filepath.Join(dir, "root"), filepath.Join(dir, "state"), sock, sock+".ttrpc", filepath.Join(dir, "opt"))
	cfgPath := filepath.Join(dir, "config.toml")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfgPath, []byte(cfg+tables), 0o644); err != nil {
		t.Fatal(err)
	}
	// The runc shim runs criu from PATH: CRIU 4.1.1 when installed.
	var env []string
	if _, err := os.Stat(criuWrapper); err == nil {
		bin := filepath.Join(dir, "bin")
		os.MkdirAll(bin, 0o755)
		os.Symlink(criuWrapper, filepath.Join(bin, "criu"))
		env = []string{"PATH=" + bin + ":" + os.Getenv("PATH")}
	}
	startDaemon(t, filepath.Join(dir, "containerd.log"), sock, env, containerdBin, "--config", cfgPath)
	return sock
}

// TestContainerdCtr runs busybox through containerd's runc shim with
// `ctr run --runc-binary`, with runc and with cove-runc: run --rm with
// output and exit code, run -d, task exec, ps, pause/resume (checked in
// the freezer), metrics, container checkpoint --task --rw and restore
// --live of a counter, kill and delete; and a probe of what a container and
// an exec'd process see, compared between the two.
func TestContainerdCtr(t *testing.T) {
	needBins(t, containerdBin, ctrBin, shimBin)
	dir := t.TempDir()
	parent := "/cli-ctr-" + strconv.Itoa(os.Getpid())
	removeCgroupTree(t, parent)
	sock := startContainerd(t, dir, false, "")
	ctr := &client{t: t, argv: []string{ctrBin, "-a", sock}, timeout: time.Minute}
	ctr.must("images", "import", image.archive)
	probes := probeOutputs{}
	for _, rt := range runtimes() {
		t.Run(rt.name, func(t *testing.T) {
			ctrScenario(t, ctr.with(t), rt.name, rt.path, filepath.Join(dir, "runc-root-"+rt.name), parent, probes)
		})
	}
	probes.compare(t, "default", "exec")
}

func ctrScenario(t *testing.T, ctr *client, name, bin, root, parent string, probes probeOutputs) {
	rtFlags := []string{"--runc-binary", bin, "--runc-root", root}
	id := "cli-ctr-" + name
	cgFlags := func(id string) []string { return []string{"--cgroup", parent + "/" + id} }
	defer ctr.done()
	t.Cleanup(func() {
		if ctrStatus(ctr, id) == "" {
			return
		}
		ctr.run("task", "kill", "-s", "SIGKILL", id)
		waitFor(10*time.Second, func() bool { return ctrStatus(ctr, id) != "RUNNING" })
		ctr.run("task", "delete", id)
		ctr.run("containers", "rm", id)
	})

	// run --rm: output and exit code reach ctr.
	r := ctr.run(append(append(append([]string{"run", "--rm"}, rtFlags...), cgFlags(id+"-rm")...), imageName, id+"-rm", "sh", "-c", "echo hello from pid $$; exit 3")...)
	if r.code != 3 || !strings.Contains(r.out, "hello from pid 1") {
		t.Errorf("ctr run --rm: want exit 3 and the greeting, got %v", r)
	}

	// What the container sees, in a container and in an exec'd process.
	if out, ok := ctr.check(append(append(append([]string{"run", "--rm"}, rtFlags...), cgFlags(id+"-probe")...), imageName, id+"-probe", "sh", "/probe.sh")...); ok {
		probes[name+"/default"] = out
	}

	// A long-running counter that exits on SIGTERM.
	ctr.must(append(append(append([]string{"run", "-d"}, rtFlags...), cgFlags(id)...), imageName, id,
		"sh", "-c", "trap 'exit 0' TERM; i=0; while :; do i=$((i+1)); echo $i > /tmp/n.new; mv /tmp/n.new /tmp/n; sleep 0.1; done")...)
	pid := ctrPid(t, ctr, id)
	if _, err := os.Stat(filepath.Join(root, "default", id)); err != nil {
		t.Errorf("no state under the runtime root given to the shim: %v", err)
	}
	if out := runCmd(nil, 10*time.Second, bin, "--root", filepath.Join(root, "default"), "state", id); !strings.Contains(out.out, `"running"`) {
		t.Errorf("%s state %s: want running, got %v", name, id, out)
	}

	// exec: output, and the exit code of the exec'd process.
	if out, ok := ctr.check("task", "exec", "--exec-id", "e1", id, "sh", "-c", "echo exec-ok; cat /proc/1/cmdline"); ok {
		if !strings.Contains(out, "exec-ok") || !strings.Contains(out, "trap") {
			t.Errorf("ctr task exec: want exec-ok and pid 1's command line, got %q", out)
		}
	}
	if out, ok := ctr.check("task", "exec", "--exec-id", "probe", "--user", "1000:1000", "--cwd", "/tmp", id, "sh", "/probe.sh"); ok {
		probes[name+"/exec"] = out
	}
	if r := ctr.run("task", "exec", "--exec-id", "e2", id, "sh", "-c", "exit 5"); r.code != 5 {
		t.Errorf("ctr task exec exit code: want 5, got %v", r)
	}

	// ps lists the init pid.
	if out, ok := ctr.check("task", "ps", id); ok && !strings.Contains(out, strconv.Itoa(pid)) {
		t.Errorf("ctr task ps: want pid %d in\n%s", pid, out)
	}

	// pause/resume: the status and the freezer agree.
	if _, ok := ctr.check("task", "pause", id); ok {
		if st := ctrStatus(ctr, id); st != "PAUSED" {
			t.Errorf("after pause: status %s, want PAUSED", st)
		}
		if v, err := cgroupFile(pid, "freezer", "freezer.state"); err != nil || v != "FROZEN" {
			t.Errorf("after pause: freezer.state %q (%v), want FROZEN", v, err)
		}
		if _, ok := ctr.check("task", "resume", id); ok {
			if st := ctrStatus(ctr, id); st != "RUNNING" {
				t.Errorf("after resume: status %s, want RUNNING", st)
			}
			if v, err := cgroupFile(pid, "freezer", "freezer.state"); err != nil || v != "THAWED" {
				t.Errorf("after resume: freezer.state %q (%v), want THAWED", v, err)
			}
		}
	}

	// metrics come from the container's cgroups.
	if out, ok := ctr.check("task", "metrics", id); ok {
		for _, want := range []string{"memory.usage_in_bytes", "pids.current"} {
			if !strings.Contains(out, want) {
				t.Errorf("ctr task metrics: no %s in\n%s", want, out)
			}
		}
	}

	pid = ctrCheckpoint(t, ctr, id, name, pid)

	// kill (SIGTERM) stops it; delete removes the task and the runtime's state.
	ctr.must("task", "kill", id)
	if !waitFor(10*time.Second, func() bool { return ctrStatus(ctr, id) == "STOPPED" }) {
		t.Fatalf("task %s not stopped 10s after SIGTERM: %s", id, ctrStatus(ctr, id))
	}
	ctr.must("task", "delete", id)
	ctr.must("containers", "rm", id)
	if _, err := os.Stat(filepath.Join(root, "default", id)); !os.IsNotExist(err) {
		t.Errorf("runtime state of %s left after task delete: %v", id, err)
	}
	if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); err == nil && alive(pid) {
		t.Errorf("pid %d still alive after task delete", pid)
	}
}

// ctrCheckpoint checkpoints the running counter with its rw layer into
// an image (RUNTIME checkpoint, leaving it running), removes the
// container, restores it from the image (RUNTIME restore --detach) and
// checks that it counts on from the checkpoint. It returns the task's pid.
func ctrCheckpoint(t *testing.T, ctr *client, id, name string, pid int) int {
	t.Helper()
	if _, err := os.Stat(criuWrapper); err != nil {
		t.Logf("checkpoint/restore not tried: %s missing (.ci/criu.sh installs CRIU 4.1.1)", criuWrapper)
		return pid
	}
	ref := "cli-checkpoint-" + name + ":1"
	count := func() int {
		r := runCmd(nil, 30*time.Second, append(ctr.argv, "task", "exec", "--exec-id", fmt.Sprintf("n%d", time.Now().UnixNano()), id, "cat", "/tmp/n")...)
		n, err := strconv.Atoi(strings.TrimSpace(r.out))
		if err != nil {
			return -1
		}
		return n
	}
	before := count()
	if _, ok := ctr.check("containers", "checkpoint", "--task", "--rw", id, ref); !ok {
		return pid
	}
	ctr.must("task", "kill", "-s", "SIGKILL", id)
	waitFor(10*time.Second, func() bool { return ctrStatus(ctr, id) == "STOPPED" })
	ctr.must("task", "delete", id)
	ctr.must("containers", "rm", id)
	if _, ok := ctr.check("containers", "restore", "--live", "--rw", id, ref); !ok {
		t.FailNow() // no container left to carry on with
	}
	if st := ctrStatus(ctr, id); st != "RUNNING" {
		t.Fatalf("after restore: status %q, want RUNNING", st)
	}
	n := count()
	if n < before {
		t.Errorf("restored counter at %d, below %d before the checkpoint: it started over", n, before)
	}
	if !waitFor(5*time.Second, func() bool { return count() > n }) {
		t.Errorf("restored counter does not count on from %d", n)
	}
	return ctrPid(t, ctr, id)
}

// ctrStatus is the task's STATUS column in `ctr task ls`.
func ctrStatus(ctr *client, id string) string {
	r := runCmd(nil, 10*time.Second, append(ctr.argv, "task", "ls")...)
	for _, line := range strings.Split(r.out, "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == id {
			return f[2]
		}
	}
	return ""
}

// ctrPid is the task's host pid.
func ctrPid(t *testing.T, ctr *client, id string) int {
	t.Helper()
	r := runCmd(nil, 10*time.Second, append(ctr.argv, "task", "ls")...)
	for _, line := range strings.Split(r.out, "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == id {
			pid, err := strconv.Atoi(f[1])
			if err == nil && pid > 0 {
				return pid
			}
		}
	}
	t.Fatalf("task %s not in ctr task ls:\n%s", id, r.out)
	return 0
}

// alive reports whether pid runs (a zombie does not count).
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || !strings.HasPrefix(s[i:], ") Z") && !strings.HasPrefix(s[i:], ") X")
}
