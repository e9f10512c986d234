package clients

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

const (
	podmanBin = "/usr/bin/podman"
	conmonBin = "/usr/bin/conmon"
	// criuWrapper is CRIU 4.1.1 as .ci/criu.sh installs it; Debian
	// bookworm's criu 3.17 fails on this kernel.
	criuWrapper = "/usr/local/sbin/cove-criu"
)

// podmanClient is podman with private storage, run and tmp dirs under dir,
// cgroupfs (no systemd here), file events, and the runtime at path. PATH
// starts with a directory whose criu is CRIU 4.1.1 when installed, for
// podman's and the runtime's criu lookups.
//
// Podman passes the runtime no --root, and its container cleanup (run by
// conmon at exit) drops --runtime-flag; so the runtime is a two-line
// script adding a private --root, which keeps the test's containers out
// of the shared default root (where other users of the runtime list and
// delete containers) and lets cleanup find them.
func podmanClient(t *testing.T, dir, runtime string) *client {
	bin := filepath.Join(dir, "bin")
	os.MkdirAll(bin, 0o755)
	if _, err := os.Stat(criuWrapper); err == nil {
		os.Symlink(criuWrapper, filepath.Join(bin, "criu"))
	}
	if runtime != "" {
		wrapper := filepath.Join(bin, filepath.Base(runtime)+"-private")
		script := fmt.Sprintf("#!/bin/sh\nexec %s --root %s \"$@\"\n", runtime, filepath.Join(dir, "root-"+filepath.Base(runtime)))
		if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
		runtime = wrapper
	}
	argv := []string{podmanBin,
		"--root", filepath.Join(dir, "storage"),
		"--runroot", filepath.Join(dir, "run"),
		"--tmpdir", filepath.Join(dir, "tmp"),
		"--storage-driver", "overlay",
		"--cgroup-manager", "cgroupfs",
		"--events-backend", "file",
	}
	if runtime != "" {
		argv = append(argv, "--runtime", runtime)
	}
	return &client{t: t, argv: argv, timeout: time.Minute,
		env: []string{"PATH=" + bin + ":" + os.Getenv("PATH")}}
}

// podmanCgroup is the cgroup parent of the test's containers and their
// conmons (podman's default, /libpod_parent, would outlive the test).
var podmanCgroup = "/cli-podman-" + strconv.Itoa(os.Getpid())

// podmanRunFlags are what `podman run` needs here: the hard RLIMIT_NOFILE
// is 20000 and root cannot raise it to podman's default, and no network
// (podman's default bridge would add iptables rules).
var podmanRunFlags = []string{"--ulimit", "nofile=20000:20000", "--ulimit", "nproc=32768:32768", "--network", "none",
	"--cgroup-parent", podmanCgroup}

// TestPodman runs busybox through podman and conmon with --runtime runc and
// with --runtime cove-runc: run --rm with output and exit code, run -t; run -d,
// exec, logs, pause/unpause (checked in the freezer), stats, checkpoint and
// restore of a running counter (it keeps counting), checkpoint --export and
// restore --import as a new container, restart, stop, rm,
// kill -s KILL; exit statuses 126/127; and a probe of what the container
// sees, compared between the two.
func TestPodman(t *testing.T) {
	needBins(t, podmanBin, conmonBin)
	removeCgroupTree(t, podmanCgroup)
	dir := t.TempDir()
	podman := podmanClient(t, dir, "")
	podman.must("import", image.rootfsTar, "cli-busybox")
	t.Cleanup(func() {
		runCmd(podman.env, time.Minute, append(podman.argv, "rm", "-af", "-t", "0")...)
		// podman leaves overlay mounts of its storage behind at times.
		exec.Command("umount", "-R", filepath.Join(dir, "storage", "overlay")).Run()
	})
	probes := probeOutputs{}
	for _, rt := range runtimes() {
		t.Run(rt.name, func(t *testing.T) {
			p := podmanClient(t, dir, rt.path)
			p.missing = new([]string)
			podmanScenario(t, p, rt.name, probes)
		})
	}
	probes.compare(t, "default", "restricted", "exec")
}

func podmanScenario(t *testing.T, podman *client, name string, probes probeOutputs) {
	defer podman.done()
	id := "cli-podman-" + name
	t.Cleanup(func() { runCmd(podman.env, time.Minute, append(podman.argv, "rm", "-f", "-t", "0", id, id+"-rm")...) })
	run := func(args ...string) []string {
		return append(append([]string{"run"}, podmanRunFlags...), args...)
	}

	// What the container sees, by default and locked down.
	if out, ok := podman.check(run("--rm", "cli-busybox", "sh", "/probe.sh")...); ok {
		probes[name+"/default"] = out
	}
	if out, ok := podman.check(run("--rm", "--read-only", "--user", "1000:1000", "--cap-drop", "all",
		"--cap-add", "net_bind_service", "--ulimit", "nofile=1024:2048", "--security-opt", "no-new-privileges",
		"-w", "/tmp", "cli-busybox", "sh", "/probe.sh")...); ok {
		probes[name+"/restricted"] = out
	}

	r := podman.run(run("--rm", "--name", id+"-rm", "cli-busybox", "sh", "-c", "echo hello from pid $$; exit 7")...)
	if r.code != 7 || strings.TrimSpace(r.out) != "hello from pid 1" {
		t.Errorf("podman run --rm: want exit 7 and only the greeting, got %v", r)
	}

	// Exit status for a command that cannot run, derived from the
	// runtime's error text: 127 not found, 126 not executable.
	for _, c := range []struct {
		arg  string
		code int
	}{{"nope", 127}, {"/etc", 126}, {"/www/index.html", 126}} {
		if r := podman.run(run("--rm", "cli-busybox", c.arg)...); r.code != c.code {
			t.Errorf("podman run %s: exit %d, want %d: %s", c.arg, r.code, c.code, firstLine(r.out))
		}
	}

	// run -t: conmon hands the runtime a console socket.
	if out, ok := podman.check(run("--rm", "-t", "--name", id+"-rm", "cli-busybox", "tty")...); ok && strings.TrimSpace(out) != "/dev/pts/0" {
		t.Errorf("podman run -t tty: %q, want /dev/pts/0", out)
	}

	// A counter: it prints and stores its count, and exits 0 on SIGTERM.
	podman.must(run("-d", "--name", id, "cli-busybox", "sh", "-c",
		"trap 'echo bye; exit 0' TERM; i=0; while :; do echo tick $i; echo $i > /tmp/n.new; mv /tmp/n.new /tmp/n; i=$((i+1)); sleep 0.1; done")...)
	pid := podmanPid(t, podman, id)

	if out, ok := podman.check("exec", id, "sh", "-c", "echo exec-ok; cat /proc/1/cmdline"); ok {
		if !strings.Contains(out, "exec-ok") || !strings.Contains(out, "tick") {
			t.Errorf("podman exec: want exec-ok and pid 1's command line, got %q", out)
		}
	}
	if out, ok := podman.check("exec", "-u", "1000", "-e", "FOO=bar", "-w", "/tmp", id, "sh", "/probe.sh"); ok {
		probes[name+"/exec"] = out
	}
	if r := podman.run("exec", id, "sh", "-c", "exit 4"); r.code != 4 {
		t.Errorf("podman exec exit code: want 4, got %v", r)
	}
	waitFor(5*time.Second, func() bool { return strings.Contains(podman.run("logs", id).out, "tick 1") })
	if out := podman.must("logs", id); !strings.HasPrefix(out, "tick 0\ntick 1\n") {
		t.Errorf("podman logs: want the counter's output from tick 0, got %q", firstLine(out))
	}

	if _, ok := podman.check("pause", id); ok {
		if st := podmanStatus(podman, id); st != "paused" {
			t.Errorf("after pause: %s, want paused", st)
		}
		if v, err := cgroupFile(pid, "freezer", "freezer.state"); err != nil || v != "FROZEN" {
			t.Errorf("after pause: freezer.state %q (%v), want FROZEN", v, err)
		}
		if _, ok := podman.check("unpause", id); ok {
			if st := podmanStatus(podman, id); st != "running" {
				t.Errorf("after unpause: %s, want running", st)
			}
			if v, err := cgroupFile(pid, "freezer", "freezer.state"); err != nil || v != "THAWED" {
				t.Errorf("after unpause: freezer.state %q (%v), want THAWED", v, err)
			}
		}
	}

	if out, ok := podman.check("stats", "--no-stream", "--format", "{{.Name}} {{.PIDs}} {{.MemUsage}}", id); ok {
		f := strings.Fields(out)
		if len(f) < 3 || f[0] != id || f[1] == "0" || f[1] == "--" {
			t.Errorf("podman stats: want the name and a pid count, got %q", out)
		}
	}

	podmanCheckpoint(t, podman, id)

	// restart: stop, then create and start the same container again.
	if _, ok := podman.check("restart", "-t", "10", id); ok {
		if st := podmanStatus(podman, id); st != "running" {
			t.Errorf("after restart: %s, want running", st)
		}
		if npid := podmanPid(t, podman, id); npid == pid || !alive(npid) {
			t.Errorf("after restart: pid %d (was %d), want a new live process", npid, pid)
		}
	}

	podman.must("stop", id)
	if st := podmanStatus(podman, id); st != "exited" {
		t.Errorf("after stop: %s, want exited", st)
	}
	if code := strings.TrimSpace(podman.must("inspect", "-f", "{{.State.ExitCode}}", id)); code != "0" {
		t.Errorf("after stop: exit code %s, want 0 (the TERM trap)", code)
	}
	if out := podman.must("logs", id); !strings.Contains(out, "bye") {
		t.Errorf("podman logs after stop: no bye from the TERM trap")
	}
	podman.must("rm", id)
	if r := podman.run("inspect", id); r.code == 0 {
		t.Errorf("container %s still there after rm", id)
	}

	// kill -s KILL: exit status 137.
	podman.must(run("-d", "--name", id, "cli-busybox", "sleep", "1000")...)
	podman.must("kill", "-s", "KILL", id)
	waitFor(10*time.Second, func() bool { return podmanStatus(podman, id) == "exited" })
	if code := strings.TrimSpace(podman.must("inspect", "-f", "{{.State.ExitCode}}", id)); code != "137" {
		t.Errorf("after kill -s KILL: exit code %s, want 137", code)
	}
	podman.must("rm", id)
}

// podmanCheckpoint checkpoints the running counter, restores it, and
// checks that it continues from where it was.
func podmanCheckpoint(t *testing.T, podman *client, id string) {
	t.Helper()
	if _, err := os.Stat(criuWrapper); err != nil {
		t.Logf("checkpoint/restore not tried: %s missing (.ci/criu.sh installs CRIU 4.1.1)", criuWrapper)
		return
	}
	if _, ok := podman.check("container", "checkpoint", id); !ok {
		return
	}
	if st := podmanStatus(podman, id); st != "exited" {
		t.Errorf("after checkpoint: %s, want exited", st)
	}
	before := podmanCount(t, podman, id, false)
	if _, ok := podman.check("container", "restore", id); !ok {
		return
	}
	if st := podmanStatus(podman, id); st != "running" {
		t.Errorf("after restore: %s, want running", st)
	}
	n := podmanCount(t, podman, id, true)
	if n < before {
		t.Errorf("after restore the counter is at %d, below %d at checkpoint: it restarted", n, before)
	}
	if !waitFor(5*time.Second, func() bool { return podmanCount(t, podman, id, true) > n }) {
		t.Errorf("restored counter does not count on from %d", n)
	}

	// Export a checkpoint (leaving the container running) and import it
	// as a new container: a fresh root, restored from the archive.
	archive := filepath.Join(t.TempDir(), "checkpoint.tar.gz")
	if _, ok := podman.check("container", "checkpoint", "--leave-running", "--export", archive, id); !ok {
		return
	}
	copyID := id + "-imported"
	t.Cleanup(func() { runCmd(podman.env, time.Minute, append(podman.argv, "rm", "-f", "-t", "0", copyID)...) })
	exported := podmanCount(t, podman, id, true)
	if _, ok := podman.check("container", "restore", "--import", archive, "--name", copyID); !ok {
		return
	}
	if st := podmanStatus(podman, copyID); st != "running" {
		t.Errorf("imported container: %s, want running", st)
	}
	if m := podmanCount(t, podman, copyID, true); m < n || m > exported+50 {
		t.Errorf("imported counter at %d, want it near %d where it was exported", m, exported)
	}
	podman.must("rm", "-f", "-t", "0", copyID)
}

// podmanCount is the counter's last value: from /tmp/n through exec when
// the container runs, else from its last "tick N" in the logs.
func podmanCount(t *testing.T, podman *client, id string, running bool) int {
	t.Helper()
	var s string
	if running {
		s = strings.TrimSpace(runCmd(podman.env, 30*time.Second, append(podman.argv, "exec", id, "cat", "/tmp/n")...).out)
	} else {
		lines := strings.Split(strings.TrimSpace(runCmd(podman.env, 30*time.Second, append(podman.argv, "logs", id)...).out), "\n")
		s = strings.TrimPrefix(lines[len(lines)-1], "tick ")
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("counter of %s: %q", id, s)
	}
	return n
}

func podmanStatus(podman *client, id string) string {
	r := runCmd(podman.env, 30*time.Second, append(podman.argv, "inspect", "-f", "{{.State.Status}}", id)...)
	return strings.TrimSpace(r.out)
}

func podmanPid(t *testing.T, podman *client, id string) int {
	t.Helper()
	r := runCmd(podman.env, 30*time.Second, append(podman.argv, "inspect", "-f", "{{.State.Pid}}", id)...)
	pid, err := strconv.Atoi(strings.TrimSpace(r.out))
	if err != nil || pid <= 0 {
		t.Fatalf("podman inspect pid of %s: %v", id, r)
	}
	return pid
}
