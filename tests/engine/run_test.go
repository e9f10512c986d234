package engine_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestEngineRunForeground(t *testing.T) {
	e := newEnv(t)
	out, errOut, code := e.split("run", "--rm", img, "sh", "-c", "echo out; echo err >&2")
	if code != 0 || out != "out\n" || errOut != "err\n" {
		t.Fatalf("run: code %d stdout %q stderr %q", code, out, errOut)
	}
	if ids := e.mustCove("ps", "-aq"); ids != "" {
		t.Fatalf("--rm left containers: %q", ids)
	}
}

func TestEngineExitCodes(t *testing.T) {
	e := newEnv(t)
	for _, c := range []struct {
		args []string
		code int
	}{
		{[]string{"sh", "-c", "exit 3"}, 3},
		{[]string{"nonexistent-cmd"}, 127},
		{[]string{"/etc"}, 126},
		{[]string{"--user", "nosuchuser", "true"}, 125},
	} {
		args := append([]string{"run", "--rm"}, c.args[:0]...)
		if c.args[0] == "--user" {
			args = append(args, c.args[0], c.args[1], img)
			args = append(args, c.args[2:]...)
		} else {
			args = append(args, img)
			args = append(args, c.args...)
		}
		out, code := e.cove(args...)
		if code != c.code {
			t.Errorf("cove %v: exit %d, want %d\n%s", args, code, c.code, out)
		}
	}
	if _, code := e.cove("run", "--rm", "localhost/ceng-no-such-image", "true"); code != 125 {
		t.Errorf("missing image: exit %d, want 125", code)
	}
	if ids := e.mustCove("ps", "-aq"); ids != "" {
		t.Fatalf("--rm left containers after failures: %q", ids)
	}
}

func TestEngineRunFlags(t *testing.T) {
	e := newEnv(t)
	out := e.mustCove("run", "--rm", "-e", "FOO=bar", "-w", "/tmp", "-u", "1000:1000", "-h", "cenghost",
		"-l", "a=b", img, "sh", "-c", `echo $FOO; pwd; id -u; id -g; hostname; cat /etc/hostname`)
	if want := "bar\n/tmp\n1000\n1000\ncenghost\ncenghost"; out != want {
		t.Fatalf("run flags: got %q want %q", out, want)
	}
	out = e.mustCove("run", "--rm", "--entrypoint", "echo", img, "from", "entrypoint")
	if out != "from entrypoint" {
		t.Fatalf("--entrypoint: %q", out)
	}
	out = e.mustCove("run", "--rm", "-u", "user", img, "id")
	if !strings.Contains(out, "uid=1000(user)") {
		t.Fatalf("-u user: %q", out)
	}
	// Default capabilities are docker's 14 (0xa80425fb); --cap-drop/--cap-add change them.
	out = e.mustCove("run", "--rm", img, "grep", "CapEff", "/proc/self/status")
	if !strings.HasSuffix(out, "00000000a80425fb") {
		t.Fatalf("default caps: %q", out)
	}
	out = e.mustCove("run", "--rm", "--cap-drop", "ALL", "--cap-add", "NET_ADMIN", img, "grep", "CapEff", "/proc/self/status")
	if !strings.HasSuffix(out, "0000000000001000") {
		t.Fatalf("--cap-drop ALL --cap-add NET_ADMIN: %q", out)
	}
	// seccomp is on by default, off with unconfined.
	if out := e.mustCove("run", "--rm", img, "grep", "Seccomp:", "/proc/self/status"); !strings.HasSuffix(out, "2") {
		t.Fatalf("default seccomp: %q", out)
	}
	if out := e.mustCove("run", "--rm", "--security-opt", "seccomp=unconfined", img, "grep", "Seccomp:", "/proc/self/status"); !strings.HasSuffix(out, "0") {
		t.Fatalf("seccomp=unconfined: %q", out)
	}
	if out := e.mustCove("run", "--rm", "--security-opt", "no-new-privileges", img, "grep", "NoNewPrivs", "/proc/self/status"); !strings.HasSuffix(out, "1") {
		t.Fatalf("no-new-privileges: %q", out)
	}
	// --read-only, --tmpfs, --ulimit, --shm-size, --sysctl.
	if _, code := e.cove("run", "--rm", "--read-only", img, "touch", "/x"); code == 0 {
		t.Fatal("--read-only: write to / succeeded")
	}
	out = e.mustCove("run", "--rm", "--read-only", "--tmpfs", "/scratch", img, "sh", "-c", "touch /scratch/x && grep /scratch /proc/mounts")
	if !strings.Contains(out, "tmpfs") {
		t.Fatalf("--tmpfs: %q", out)
	}
	if out := e.mustCove("run", "--rm", "--ulimit", "nofile=512:1024", img, "sh", "-c", "ulimit -n; ulimit -Hn"); out != "512\n1024" {
		t.Fatalf("--ulimit: %q", out)
	}
	if out := e.mustCove("run", "--rm", "--shm-size", "8m", img, "df", "-k", "/dev/shm"); !strings.Contains(out, "8192") {
		t.Fatalf("--shm-size: %q", out)
	}
	if out := e.mustCove("run", "--rm", "--sysctl", "net.ipv4.ip_forward=1", img, "cat", "/proc/sys/net/ipv4/ip_forward"); out != "1" {
		t.Fatalf("--sysctl: %q", out)
	}
	if out := e.mustCove("run", "--rm", "--group-add", "65534", img, "id", "-G"); !strings.Contains(out, "65534") {
		t.Fatalf("--group-add: %q", out)
	}
	if out := e.mustCove("run", "--rm", "--device", "/dev/zero:/dev/ceng0", img, "sh", "-c", "head -c 3 /dev/ceng0 | wc -c"); out != "3" {
		t.Fatalf("--device: %q", out)
	}
	// --pid host sees the host's processes (our own pid among them).
	if out := e.mustCove("run", "--rm", "--pid", "host", img, "sh", "-c", "test -d /proc/"+strconv.Itoa(os.Getpid())+" && echo yes"); out != "yes" {
		t.Fatalf("--pid host: %q", out)
	}
	// --privileged: every capability, no seccomp, /sys writable.
	if out := e.mustCove("run", "--rm", "--privileged", img, "sh", "-c", "grep -E 'CapEff|Seccomp:' /proc/self/status; grep ' /sys ' /proc/mounts"); !strings.Contains(out, "CapEff:\t000001ffffffffff") && !strings.Contains(out, "CapEff:\t000001fffeffffff") || !strings.Contains(out, "Seccomp:\t0") || !strings.Contains(out, "sysfs rw") {
		t.Fatalf("--privileged: %q", out)
	}
	envFile := filepath.Join(t.TempDir(), "env")
	os.WriteFile(envFile, []byte("# comment\nFROMFILE=yes\n"), 0o644)
	if out := e.mustCove("run", "--rm", "--env-file", envFile, img, "sh", "-c", "echo $FROMFILE"); out != "yes" {
		t.Fatalf("--env-file: %q", out)
	}
	// --init: pid 1 is the init, the command its child.
	if out := e.mustCove("run", "--rm", "--init", img, "cat", "/proc/1/cmdline"); !strings.Contains(out, "cove-init") {
		t.Fatalf("--init: pid 1 is %q", out)
	}
}

func TestEngineDetachLogsStop(t *testing.T) {
	e := newEnv(t)
	id := e.mustCove("run", "-d", "--name", "ceng-logs", img, "sh", "-c", "echo one; sleep 0.2; echo two >&2; trap 'echo bye; exit 0' TERM; while true; do sleep 0.1; done")
	if len(id) != 64 {
		t.Fatalf("run -d printed %q, want a 64-hex id", id)
	}
	eventually(t, 5*time.Second, "log lines", func() bool {
		out, _ := e.cove("logs", "ceng-logs")
		return strings.Contains(out, "one") && strings.Contains(out, "two")
	})
	out, errOut, _ := e.split("logs", "ceng-logs")
	if out != "one\n" || errOut != "two\n" {
		t.Fatalf("logs split by stream: stdout %q stderr %q", out, errOut)
	}
	if out := e.mustCove("logs", "--tail", "1", "ceng-logs"); out != "two" {
		t.Fatalf("logs --tail 1: %q", out)
	}
	if out := e.mustCove("logs", "-t", "--tail", "1", "ceng-logs"); !strings.HasPrefix(out, time.Now().UTC().Format("2006-01-02T")) {
		t.Fatalf("logs -t: %q", out)
	}
	if out := e.mustCove("logs", "--since", time.Now().Add(time.Hour).Format(time.RFC3339), "ceng-logs"); out != "" {
		t.Fatalf("logs --since the future: %q", out)
	}
	// The log file is docker's json-file format.
	b, err := os.ReadFile(e.inspect("ceng-logs", "{{.LogPath}}"))
	if err != nil || !strings.Contains(string(b), `{"log":"one\n","stream":"stdout","time":"`) {
		t.Fatalf("log file: %v %q", err, b)
	}
	// Prefix and name lookup; ps filters and formats.
	if got := e.mustCove("ps", "-q", "--no-trunc", "--filter", "name=ceng-logs"); got != id {
		t.Fatalf("ps --filter name: %q", got)
	}
	if got := e.mustCove("ps", "--format", "{{.Names}} {{.State}}"); got != "ceng-logs running" {
		t.Fatalf("ps --format: %q", got)
	}
	if got := e.mustCove("ps", "--format", "json"); !strings.Contains(got, `"Names": "ceng-logs"`) {
		t.Fatalf("ps --format json: %q", got)
	}
	if got := e.inspect(id[:8], "{{.Name}}"); got != "/ceng-logs" {
		t.Fatalf("inspect by prefix: %q", got)
	}
	pid, _ := strconv.Atoi(e.inspect("ceng-logs", "{{.State.Pid}}"))
	if pid <= 0 || syscall.Kill(pid, 0) != nil {
		t.Fatalf("inspect pid %d is not running", pid)
	}
	// logs -f follows until the container stops.
	follow := e.command(t.Context(), "logs", "-f", "ceng-logs")
	var fout strings.Builder
	follow.Stdout = &fout
	if err := follow.Start(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	e.mustCove("stop", "-t", "5", "ceng-logs")
	if time.Since(start) > 4*time.Second {
		t.Fatalf("stop took %s: the trap should have ended it at SIGTERM", time.Since(start))
	}
	if err := follow.Wait(); err != nil {
		t.Fatalf("logs -f: %v", err)
	}
	if !strings.Contains(fout.String(), "bye") {
		t.Fatalf("logs -f missed the last line: %q", fout.String())
	}
	if got := e.inspect("ceng-logs", "{{.State.Status}} {{.State.ExitCode}}"); got != "exited 0" {
		t.Fatalf("after stop: %q", got)
	}
	if syscall.Kill(pid, 0) == nil {
		t.Fatalf("container pid %d still runs after stop", pid)
	}
	// start again, wait, rm.
	e.mustCove("start", "ceng-logs")
	if got := e.inspect("ceng-logs", "{{.State.Status}}"); got != "running" {
		t.Fatalf("after start: %q", got)
	}
	e.mustCove("kill", "-s", "KILL", "ceng-logs")
	if got := e.mustCove("wait", "ceng-logs"); got != "137" {
		t.Fatalf("wait after kill: %q", got)
	}
	e.mustCove("rm", "ceng-logs")
	if _, code := e.cove("inspect", "ceng-logs"); code == 0 {
		t.Fatal("inspect after rm succeeded")
	}
}

func TestEngineStopTimeoutKills(t *testing.T) {
	e := newEnv(t)
	e.mustCove("run", "-d", "--name", "ceng-stubborn", img, "sleep", "100")
	start := time.Now()
	e.mustCove("stop", "-t", "1", "ceng-stubborn")
	if d := time.Since(start); d < time.Second || d > 8*time.Second {
		t.Fatalf("stop -t 1 of a process ignoring SIGTERM took %s", d)
	}
	if got := e.inspect("ceng-stubborn", "{{.State.ExitCode}}"); got != "137" {
		t.Fatalf("exit code after SIGKILL: %s", got)
	}
	if _, code := e.cove("rm", "ceng-stubborn"); code != 0 {
		t.Fatal("rm of a stopped container failed")
	}
	e.mustCove("run", "-d", "--name", "ceng-rmf", img, "sleep", "100")
	if _, code := e.cove("rm", "ceng-rmf"); code == 0 {
		t.Fatal("rm of a running container without -f succeeded")
	}
	e.mustCove("rm", "-f", "ceng-rmf")
}

func TestEngineExec(t *testing.T) {
	e := newEnv(t)
	e.mustCove("run", "-d", "--name", "ceng-exec", img, "sleep", "100")
	out := e.mustCove("exec", "-e", "X=1", "-u", "1000", "-w", "/tmp", "ceng-exec", "sh", "-c", "echo $X; id -u; pwd")
	if out != "1\n1000\n/tmp" {
		t.Fatalf("exec: %q", out)
	}
	if _, code := e.cove("exec", "ceng-exec", "sh", "-c", "exit 7"); code != 7 {
		t.Fatalf("exec exit code %d, want 7", code)
	}
	if _, code := e.cove("exec", "ceng-exec", "no-such-cmd"); code != 127 {
		t.Fatalf("exec of a missing command: exit %d, want 127", code)
	}
	cmd := e.command(t.Context(), "exec", "-i", "ceng-exec", "cat")
	cmd.Stdin = strings.NewReader("through stdin\n")
	b, err := cmd.Output()
	if err != nil || string(b) != "through stdin\n" {
		t.Fatalf("exec -i: %v %q", err, b)
	}
	e.mustCove("exec", "-d", "ceng-exec", "sh", "-c", "echo detached > /tmp/d")
	eventually(t, 5*time.Second, "detached exec", func() bool {
		out, _ := e.cove("exec", "ceng-exec", "cat", "/tmp/d")
		return strings.TrimSpace(out) == "detached"
	})
	// -t: the process has a terminal.
	if out := e.mustCove("exec", "-t", "ceng-exec", "tty"); !strings.HasPrefix(out, "/dev/pts/") {
		t.Fatalf("exec -t: %q", out)
	}
	if out := e.mustCove("top", "ceng-exec"); !strings.Contains(out, "sleep 100") {
		t.Fatalf("top: %q", out)
	}
}

func TestEngineInteractive(t *testing.T) {
	e := newEnv(t)
	cmd := e.command(t.Context(), "run", "--rm", "-i", img, "sh", "-c", "cat; echo end")
	cmd.Stdin = strings.NewReader("a\nb\n")
	b, err := cmd.Output()
	if err != nil || string(b) != "a\nb\nend\n" {
		t.Fatalf("run -i: %v %q", err, b)
	}
	out := e.mustCove("run", "--rm", "-t", img, "sh", "-c", "tty; echo $TERM")
	if !strings.HasPrefix(out, "/dev/pts/0") || !strings.Contains(out, "xterm") {
		t.Fatalf("run -t: %q", out)
	}
}

func TestEngineSignalForwarding(t *testing.T) {
	e := newEnv(t)
	cmd := e.command(t.Context(), "run", "--rm", img, "sh", "-c", "trap 'echo got-term; exit 5' TERM; echo ready; while true; do sleep 0.1; done")
	var out strings.Builder
	cmd.Stdout = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "ready", func() bool { return strings.Contains(out.String(), "ready") })
	cmd.Process.Signal(syscall.SIGTERM)
	err := cmd.Wait()
	ee, _ := err.(interface{ ExitCode() int })
	if ee == nil || ee.ExitCode() != 5 || !strings.Contains(out.String(), "got-term") {
		t.Fatalf("SIGTERM to cove run: %v, output %q", err, out.String())
	}
}

func TestEngineNames(t *testing.T) {
	e := newEnv(t)
	// Two runs with one name at once: exactly one is created.
	type res struct {
		out  string
		code int
	}
	ch := make(chan res, 2)
	for range 2 {
		go func() {
			out, code := e.cove("create", "--name", "ceng-race", img, "true")
			ch <- res{out, code}
		}()
	}
	r1, r2 := <-ch, <-ch
	if (r1.code == 0) == (r2.code == 0) {
		t.Fatalf("name race: exits %d and %d\n%s\n%s", r1.code, r2.code, r1.out, r2.out)
	}
	if n := len(strings.Fields(e.mustCove("ps", "-aq"))); n != 1 {
		t.Fatalf("name race made %d containers", n)
	}
	e.mustCove("rename", "ceng-race", "ceng-renamed")
	if got := e.inspect("ceng-renamed", "{{.Name}}"); got != "/ceng-renamed" {
		t.Fatalf("rename: %q", got)
	}
	e.mustCove("create", "--name", "ceng-race", img, "true") // the old name is free again
	if _, code := e.cove("rename", "ceng-race", "ceng-renamed"); code == 0 {
		t.Fatal("rename onto a used name succeeded")
	}
	if _, code := e.cove("create", "--name", "bad/name", img, "true"); code != 125 {
		t.Fatal("invalid name accepted")
	}
	// create then start -a.
	id := e.mustCove("create", "--name", "ceng-created", img, "echo", "started")
	if got := e.inspect(id, "{{.State.Status}}"); got != "created" {
		t.Fatalf("after create: %q", got)
	}
	if out := e.mustCove("start", "-a", "ceng-created"); out != "started" {
		t.Fatalf("start -a: %q", out)
	}
	e.mustCove("container", "prune")
	if n := len(strings.Fields(e.mustCove("ps", "-aq"))); n != 0 {
		t.Fatalf("prune left %d containers", n)
	}
}

func TestEnginePauseStats(t *testing.T) {
	e := newEnv(t)
	e.mustCove("run", "-d", "--name", "ceng-pause", img, "sleep", "100")
	e.mustCove("pause", "ceng-pause")
	if got := e.inspect("ceng-pause", "{{.State.Status}}"); got != "paused" {
		t.Fatalf("after pause: %q", got)
	}
	pid := e.inspect("ceng-pause", "{{.State.Pid}}")
	b, _ := os.ReadFile(filepath.Join("/proc", pid, "status"))
	if !strings.Contains(string(b), "State:\tS") && !strings.Contains(string(b), "State:\tD") {
		t.Logf("paused process state: %s", b)
	}
	e.mustCove("unpause", "ceng-pause")
	if got := e.inspect("ceng-pause", "{{.State.Status}}"); got != "running" {
		t.Fatalf("after unpause: %q", got)
	}
	if out := e.mustCove("stats", "--no-stream", "ceng-pause"); !strings.Contains(out, "ceng-pause") {
		t.Fatalf("stats: %q", out)
	}
}

func TestEngineAttachAndSharing(t *testing.T) {
	e := newEnv(t)
	e.mustCove("run", "-d", "--name", "ceng-att", "--stop-signal", "USR1", img, "sh", "-c",
		"trap 'echo usr1; exit 9' USR1; while true; do echo tick; sleep 0.2; done")
	att := e.command(t.Context(), "attach", "ceng-att")
	var out strings.Builder
	att.Stdout = &out
	if err := att.Start(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "attached output", func() bool { return strings.Contains(out.String(), "tick") })
	// Another container in its pid and ipc namespaces sees its processes.
	if ps := e.mustCove("run", "--rm", "--pid", "container:ceng-att", "--ipc", "container:ceng-att", img, "ps"); !strings.Contains(ps, "while true") {
		t.Fatalf("--pid container: ps shows %q", ps)
	}
	// stop uses --stop-signal; attach ends with the container's exit code.
	e.mustCove("stop", "ceng-att")
	err := att.Wait()
	ee, _ := err.(interface{ ExitCode() int })
	if ee == nil || ee.ExitCode() != 9 || !strings.Contains(out.String(), "usr1") {
		t.Fatalf("attach: %v, output %q", err, out.String())
	}
	// --log-driver none keeps no log.
	e.mustCove("run", "--name", "ceng-nolog", "--log-driver", "none", img, "echo", "x")
	if out := e.mustCove("logs", "ceng-nolog"); out != "" {
		t.Fatalf("logs with --log-driver none: %q", out)
	}
}
