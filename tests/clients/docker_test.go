package clients

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Debian's docker.io, by full path: a newer docker client may come first
// in PATH.
const (
	dockerdBin     = "/usr/sbin/dockerd"
	dockerBin      = "/usr/bin/docker"
	dockerProxyBin = "/usr/sbin/docker-proxy"
)

// startDocker starts a containerd and a dockerd of their own under dir,
// with cove-runc registered as runtime "cove". Networking stays private: a
// bridge of the test's own (removed at cleanup) and no iptables, NAT or
// ip_forward changes; -p is served by docker-proxy, which needs none.
func startDocker(t *testing.T, dir string) *client {
	t.Helper()
	csock := startContainerd(t, filepath.Join(dir, "containerd"), false, "")
	bridge, cidr := makeBridge(t)
	cfg := filepath.Join(dir, "daemon.json")
	// The trust key would go to /etc/docker/key.json otherwise.
	b, _ := json.Marshal(map[string]any{"deprecated-key-path": filepath.Join(dir, "key.json")})
	if err := os.WriteFile(cfg, b, 0o644); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "docker.sock")
	// --experimental for docker checkpoint; criu from PATH: CRIU 4.1.1.
	var env []string
	if _, err := os.Stat(criuWrapper); err == nil {
		env = []string{"PATH=" + filepath.Join(dir, "containerd", "bin") + ":" + os.Getenv("PATH")}
	}
	startDaemon(t, filepath.Join(dir, "dockerd.log"), sock, env, dockerdBin, "--experimental",
		"--config-file", cfg,
		"--data-root", filepath.Join(dir, "data"),
		"--exec-root", filepath.Join(dir, "exec"),
		"--pidfile", filepath.Join(dir, "docker.pid"),
		"--host", "unix://"+sock,
		"--containerd", csock,
		"--add-runtime", "cove="+coveBin,
		"--cgroup-parent", "/cli-docker-"+strconv.Itoa(os.Getpid()),
		"--bridge", bridge, "--fixed-cidr", cidr,
		"--iptables=false", "--ip-forward=false", "--ip-masq=false",
		"--userland-proxy-path", dockerProxyBin)
	return &client{t: t, argv: []string{dockerBin, "-H", "unix://" + sock}, timeout: time.Minute}
}

// makeBridge creates a bridge named after the test process with an unused
// /24 from 172.31.0.0/16 and removes it at cleanup.
func makeBridge(t *testing.T) (name, cidr string) {
	t.Helper()
	name = fmt.Sprintf("cli-br%d", os.Getpid()%100000)
	used, _ := exec.Command("ip", "-4", "route").Output()
	for i := 0; i < 50; i++ {
		n := 200 + (os.Getpid()+i)%50
		cidr = fmt.Sprintf("172.31.%d.0/24", n)
		if strings.Contains(string(used), cidr) {
			continue
		}
		if out, err := exec.Command("ip", "link", "add", name, "type", "bridge").CombinedOutput(); err != nil {
			t.Fatalf("ip link add %s: %v: %s", name, err, out)
		}
		t.Cleanup(func() { exec.Command("ip", "link", "del", name).Run() })
		for _, args := range [][]string{
			{"addr", "add", fmt.Sprintf("172.31.%d.1/24", n), "dev", name},
			{"link", "set", name, "up"},
		} {
			if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
				t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
			}
		}
		return name, cidr
	}
	t.Fatal("no free /24 in 172.31.200-249")
	return "", ""
}

// TestDocker runs busybox through dockerd with its default runc and with
// `--runtime cove`: run --rm with output and exit code, run --init, run -t; run -d
// with a published port (busybox httpd fetched from the test), a bind
// mount, --memory and --pids-limit (checked in the cgroup files); exec,
// exec -t, top, pause/unpause, update, restart, logs, stop, rm; checkpoint
// create and start --checkpoint of a counter on the bridge; and a probe of
// what the container sees, compared between the two.
func TestDocker(t *testing.T) {
	needBins(t, dockerdBin, dockerBin, dockerProxyBin, containerdBin, shimBin)
	dir := t.TempDir()
	removeCgroupTree(t, "cli-docker-"+strconv.Itoa(os.Getpid()))
	docker := startDocker(t, dir)
	docker.must("load", "-i", image.archive)
	probes := probeOutputs{}
	for i, rt := range []struct{ name, runtime string }{{"runc", "runc"}, {"cove-runc", "cove"}} {
		t.Run(rt.name, func(t *testing.T) {
			dockerScenario(t, docker.with(t), rt.name, rt.runtime, dir, 18000+os.Getpid()%1000*10+i, probes)
		})
	}
	probes.compare(t, "default", "restricted", "exec")
}

func dockerScenario(t *testing.T, docker *client, name, runtime, dir string, port int, probes probeOutputs) {
	defer docker.done()
	id := "cli-docker-" + name
	t.Cleanup(func() { runCmd(nil, time.Minute, append(docker.argv, "rm", "-f", id, id+"-rm")...) })
	img := strings.TrimPrefix(imageName, "docker.io/library/")

	// What the container sees, by default and locked down.
	if out, ok := docker.check("run", "--rm", "--runtime", runtime, img, "sh", "/probe.sh"); ok {
		probes[name+"/default"] = out
	}
	if out, ok := docker.check("run", "--rm", "--runtime", runtime, "--read-only", "--tmpfs", "/run",
		"--user", "1000:1000", "--cap-drop", "ALL", "--cap-add", "NET_BIND_SERVICE", "--ulimit", "nofile=1024:2048",
		"--security-opt", "no-new-privileges", "-w", "/tmp", img, "sh", "/probe.sh"); ok {
		probes[name+"/restricted"] = out
	}

	r := docker.run("run", "--rm", "--runtime", runtime, "--name", id+"-rm", img, "sh", "-c", "echo hello from pid $$; exit 3")
	if r.code != 3 || !strings.Contains(r.out, "hello from pid 1") {
		t.Errorf("docker run --rm: want exit 3 and the greeting, got %v", r)
	}

	// Exit status for a command that cannot run, derived from the
	// runtime's error text: 127 not found, 126 not executable.
	for _, c := range []struct {
		arg  string
		code int
	}{{"nope", 127}, {"/etc", 126}, {"/www/index.html", 126}} {
		if r := docker.run("run", "--rm", "--runtime", runtime, img, c.arg); r.code != c.code {
			t.Errorf("docker run %s: exit %d, want %d: %s", c.arg, r.code, c.code, firstLine(r.out))
		}
	}

	// --init: Debian's docker-init (tini) is bind-mounted in and runs as pid 1.
	if out, ok := docker.check("run", "--rm", "--init", "--runtime", runtime, img, "cat", "/proc/1/comm"); ok && !strings.Contains(out, "docker-init") {
		t.Errorf("docker run --init: pid 1 is %q, want docker-init", out)
	}

	// run -t: the container's stdio is a terminal (console socket).
	if out, ok := docker.check("run", "--rm", "-t", "--runtime", runtime, "--name", id+"-rm", img, "tty"); ok && !strings.Contains(out, "/dev/pts/0\r\n") {
		t.Errorf("docker run -t tty: %q, want /dev/pts/0 and a CR LF", out)
	}

	host := filepath.Join(dir, "host-"+name)
	if err := os.MkdirAll(host, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(host, "in"), []byte("from the host\n"), 0o644)
	docker.must("run", "-d", "--runtime", runtime, "--name", id,
		"-p", fmt.Sprintf("127.0.0.1:%d:80", port), "-v", host+":/data",
		"--memory", "64m", "--pids-limit", "50", img,
		"sh", "-c", "echo started; httpd -p 80 -h /www; trap 'echo bye; exit 0' TERM; while :; do sleep 0.2; done")
	pid, err := strconv.Atoi(strings.TrimSpace(docker.must("inspect", "-f", "{{.State.Pid}}", id)))
	if err != nil || pid <= 0 {
		t.Fatalf("docker inspect pid: %v", err)
	}

	// -p: the page busybox httpd serves, through docker-proxy.
	var page string
	waitFor(10*time.Second, func() bool {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/index.html", port))
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		page = string(b)
		return resp.StatusCode == 200
	})
	if page != "hello from cli-busybox\n" {
		t.Errorf("GET 127.0.0.1:%d: %q, want the image's index.html", port, page)
	}

	// -v: read the host's file, write one the host sees.
	if out, ok := docker.check("exec", id, "sh", "-c", "cat /data/in; echo from the container > /data/out"); ok && !strings.Contains(out, "from the host") {
		t.Errorf("docker exec cat /data/in: %q", out)
	}
	if b, err := os.ReadFile(filepath.Join(host, "out")); err != nil || string(b) != "from the container\n" {
		t.Errorf("host side of the bind mount: %q, %v", b, err)
	}
	if out, ok := docker.check("exec", "-u", "1000", "-e", "FOO=bar", "-w", "/tmp", id, "sh", "/probe.sh"); ok {
		probes[name+"/exec"] = out
	}
	if r := docker.run("exec", id, "sh", "-c", "exit 4"); r.code != 4 {
		t.Errorf("docker exec exit code: want 4, got %v", r)
	}

	// exec -t: a terminal through the console socket.
	if out, ok := docker.check("exec", "-t", id, "tty"); ok && !strings.HasPrefix(out, "/dev/pts/") {
		t.Errorf("docker exec -t tty: %q, want a /dev/pts path", out)
	}

	// --memory and --pids-limit in the container's cgroups.
	if v, err := cgroupFile(pid, "memory", "memory.limit_in_bytes"); err != nil || v != strconv.Itoa(64<<20) {
		t.Errorf("memory.limit_in_bytes %q (%v), want %d", v, err, 64<<20)
	}
	if v, err := cgroupFile(pid, "pids", "pids.max"); err != nil || v != "50" {
		t.Errorf("pids.max %q (%v), want 50", v, err)
	}

	// top runs RUNTIME ps --format json; pause/unpause the freezer;
	// update pipes resources (zeros for what is not asked) to RUNTIME update.
	if out, ok := docker.check("top", id); ok && !strings.Contains(out, strconv.Itoa(pid)) {
		t.Errorf("docker top: no pid %d in\n%s", pid, out)
	}
	if _, ok := docker.check("pause", id); ok {
		if v, err := cgroupFile(pid, "freezer", "freezer.state"); err != nil || v != "FROZEN" {
			t.Errorf("after pause: freezer.state %q (%v), want FROZEN", v, err)
		}
		if _, ok := docker.check("unpause", id); ok {
			if v, err := cgroupFile(pid, "freezer", "freezer.state"); err != nil || v != "THAWED" {
				t.Errorf("after unpause: freezer.state %q (%v), want THAWED", v, err)
			}
		}
	}
	if _, ok := docker.check("update", "--memory", "80m", "--memory-swap", "160m", "--pids-limit", "60", id); ok {
		if v, err := cgroupFile(pid, "memory", "memory.limit_in_bytes"); err != nil || v != strconv.Itoa(80<<20) {
			t.Errorf("after update: memory.limit_in_bytes %q (%v), want %d", v, err, 80<<20)
		}
		if v, err := cgroupFile(pid, "pids", "pids.max"); err != nil || v != "60" {
			t.Errorf("after update: pids.max %q (%v), want 60", v, err)
		}
	}

	// restart: stop, then create and start the same id again.
	if _, ok := docker.check("restart", "-t", "10", id); ok {
		npid, _ := strconv.Atoi(strings.TrimSpace(docker.must("inspect", "-f", "{{.State.Pid}}", id)))
		if npid == pid || !alive(npid) {
			t.Errorf("after restart: pid %d (was %d), want a new live process", npid, pid)
		}
		pid = npid
	}

	dockerCheckpoint(t, docker, runtime, name, img)

	// stop sends SIGTERM: the trap runs, logs show it, exit code 0.
	docker.must("stop", id)
	if out := docker.must("logs", id); !strings.Contains(out, "started") || !strings.Contains(out, "bye") {
		t.Errorf("docker logs: %q, want started and bye", out)
	}
	if out := strings.TrimSpace(docker.must("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", id)); out != "exited 0" {
		t.Errorf("after stop: %q, want exited 0", out)
	}
	if alive(pid) {
		t.Errorf("pid %d alive after docker stop", pid)
	}
	docker.must("rm", id)
	if r := docker.run("inspect", id); r.code == 0 {
		t.Errorf("container %s still there after rm", id)
	}
	if _, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second); err == nil {
		t.Errorf("port %d still published after rm", port)
	}
}

// dockerCheckpoint checkpoints a counter on the bridge network with docker
// checkpoint create (the container stops), starts it from the checkpoint,
// and checks that it counts on and has its network back.
func dockerCheckpoint(t *testing.T, docker *client, runtime, name, img string) {
	t.Helper()
	if _, err := os.Stat(criuWrapper); err != nil {
		t.Logf("checkpoint/restore not tried: %s missing (.ci/criu.sh installs CRIU 4.1.1)", criuWrapper)
		return
	}
	id := "cli-docker-ck-" + name
	t.Cleanup(func() { runCmd(nil, time.Minute, append(docker.argv, "rm", "-f", id)...) })
	docker.must("run", "-d", "--runtime", runtime, "--name", id, img,
		"sh", "-c", "i=0; while :; do i=$((i+1)); echo $i > /tmp/n.new; mv /tmp/n.new /tmp/n; sleep 0.1; done")
	count := func() int {
		r := runCmd(nil, 30*time.Second, append(docker.argv, "exec", id, "cat", "/tmp/n")...)
		n, err := strconv.Atoi(strings.TrimSpace(r.out))
		if err != nil {
			return -1
		}
		return n
	}
	waitFor(5*time.Second, func() bool { return count() >= 3 })
	before := count()
	if _, ok := docker.check("checkpoint", "create", id, "cp-"+name); !ok {
		return
	}
	// dockerd 20.10 uploads the checkpoint into containerd's content store
	// and fails when a blob of it is already there ("commit failed: content
	// ... already exists"), which it sometimes is on the first try, with
	// runc as with cove-runc; the second start then finds it and goes on.
	if r := docker.run("start", "--checkpoint", "cp-"+name, id); r.code != 0 && strings.Contains(r.out, "already exists") {
		t.Logf("docker start --checkpoint hit dockerd's content upload race, retrying: %v", r)
	} else if r.code != 0 {
		t.Errorf("docker start --checkpoint: %v", r)
		return
	}
	if st := strings.TrimSpace(runCmd(nil, 30*time.Second, append(docker.argv, "inspect", "-f", "{{.State.Status}}", id)...).out); st != "running" {
		if _, ok := docker.check("start", "--checkpoint", "cp-"+name, id); !ok {
			return
		}
	}
	n := count()
	if n < before {
		t.Errorf("restored counter at %d, below %d before the checkpoint: it started over", n, before)
	}
	if !waitFor(5*time.Second, func() bool { return count() > n }) {
		t.Errorf("restored counter does not count on from %d", n)
	}
	if out := runCmd(nil, 30*time.Second, append(docker.argv, "exec", id, "ip", "-o", "-4", "addr", "show", "eth0")...); !strings.Contains(out.out, "172.31.") {
		t.Errorf("restored container has no address on its bridge: %v", out)
	}
	docker.must("rm", "-f", id)
}
