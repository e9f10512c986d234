package engine_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// cgroupFile reads a container's v1 cgroup file (controller/cove/ID/file).
func cgroupFile(t *testing.T, controller, id, file string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("/sys/fs/cgroup", controller, "cove", id, file))
	if err != nil {
		t.Fatalf("read cgroup file: %v", err)
	}
	return strings.TrimSpace(string(b))
}

func skipWithoutV1(t *testing.T, controller string) {
	t.Helper()
	if _, err := os.Stat(filepath.Join("/sys/fs/cgroup", controller, "cgroup.procs")); err != nil {
		t.Skipf("no cgroup v1 %s hierarchy on this host", controller)
	}
}

// Bad resource flags: exit 125, an error naming the flag, nothing created.
func TestEngineResourcesBadInput(t *testing.T) {
	e := newEnv(t)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--memory", "4m"}, "--memory"},
		{[]string{"--memory", "-1"}, "--memory"},
		{[]string{"--memory-swap", "64m"}, "--memory-swap"},
		{[]string{"--memory", "64m", "--memory-swap", "32m"}, "--memory-swap"},
		{[]string{"--memory", "64m", "--memory-reservation", "128m"}, "--memory-reservation"},
		{[]string{"--cpuset-cpus", "0-63"}, "--cpuset-cpus"},
		{[]string{"--cpuset-cpus", "x"}, "--cpuset-cpus"},
		{[]string{"--cpuset-mems", "9"}, "--cpuset-mems"},
		{[]string{"--cpus", "1000"}, "--cpus"},
		{[]string{"--cpus", "-1"}, "--cpus"},
		{[]string{"--cpus", "1", "--cpu-quota", "50000"}, "--cpus"},
		{[]string{"--cpu-period", "10"}, "--cpu-period"},
		{[]string{"--cpu-quota", "-5"}, "--cpu-quota"},
		{[]string{"--cpu-shares", "-2"}, "--cpu-shares"},
		{[]string{"--pids-limit", "-2"}, "--pids-limit"},
		{[]string{"--blkio-weight", "5"}, "--blkio-weight"},
		{[]string{"--oom-score-adj", "2000"}, "--oom-score-adj"},
		{[]string{"--device-write-bps", "/dev/ceng-nope:1mb"}, "--device-write-bps"},
		{[]string{"--device-read-bps", "/dev/null:1mb"}, "--device-read-bps"},
		{[]string{"--device-read-iops", "250:99:10"}, "--device-read-iops"},
		{[]string{"--device-write-iops", "/dev/vda:lots"}, "--device-write-iops"},
	} {
		args := append(append([]string{"create", "--name", "cengres-bad"}, c.args...), img, "true")
		out, code := e.cove(args...)
		if code != 125 || !strings.Contains(out, c.want) {
			t.Errorf("cove %v: exit %d, want 125 and an error naming %s:\n%s", c.args, code, c.want, out)
		}
	}
	if ids := e.mustCove("ps", "-aq"); ids != "" {
		t.Fatalf("bad flags created containers: %q", ids)
	}
}

// The limits land in the container's cgroup and show in inspect.
func TestEngineResourcesCgroup(t *testing.T) {
	skipWithoutV1(t, "memory")
	e := newEnv(t)
	id := e.mustCove("run", "-d", "--name", "cengres-cg", "--memory", "32m", "--memory-reservation", "16m",
		"--cpus", "0.5", "--cpu-shares", "512", "--cpuset-cpus", "0", "--pids-limit", "20",
		"--device-write-bps", "/dev/vda:5mb", "--device-read-iops", "254:0:100", "--oom-score-adj", "300",
		img, "sleep", "60")
	for _, c := range []struct{ ctl, file, want string }{
		{"memory", "memory.limit_in_bytes", "33554432"},
		{"memory", "memory.soft_limit_in_bytes", "16777216"},
		{"cpu", "cpu.cfs_quota_us", "50000"},
		{"cpu", "cpu.cfs_period_us", "100000"},
		{"cpu", "cpu.shares", "512"},
		{"cpuset", "cpuset.cpus", "0"},
		{"pids", "pids.max", "20"},
		{"blkio", "blkio.throttle.write_bps_device", "254:0 5242880"},
		{"blkio", "blkio.throttle.read_iops_device", "254:0 100"},
	} {
		if got := cgroupFile(t, c.ctl, id, c.file); got != c.want {
			t.Errorf("%s/%s = %q, want %q", c.ctl, c.file, got, c.want)
		}
	}
	pid := e.inspect("cengres-cg", "{{.State.Pid}}")
	if b, _ := os.ReadFile("/proc/" + pid + "/oom_score_adj"); strings.TrimSpace(string(b)) != "300" {
		t.Errorf("oom_score_adj = %q, want 300", b)
	}
	got := e.inspect("cengres-cg", "{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}} {{.HostConfig.PidsLimit}} {{.HostConfig.CpusetCpus}} {{(index .HostConfig.BlkioDeviceWriteBps 0).Path}}")
	if got != "3.3554432e+07 5e+08 20 0 /dev/vda" {
		t.Errorf("inspect HostConfig: %q", got)
	}
}

// A memory hog is OOM-killed and inspect says so.
func TestEngineResourcesOOM(t *testing.T) {
	skipWithoutV1(t, "memory")
	e := newEnv(t)
	_, code := e.cove("run", "--name", "cengres-oom", "--memory", "16m", img,
		"dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1")
	if code != 137 {
		t.Errorf("memory hog: exit %d, want 137 (SIGKILL)", code)
	}
	if got := e.inspect("cengres-oom", "{{.State.OOMKilled}} {{.State.ExitCode}}"); got != "true 137" {
		t.Errorf("inspect after OOM: %q, want \"true 137\"", got)
	}
	e.mustCove("run", "--name", "cengres-fine", "--memory", "16m", img, "true")
	if got := e.inspect("cengres-fine", "{{.State.OOMKilled}}"); got != "false" {
		t.Errorf("OOMKilled of a clean exit: %q", got)
	}
}

// A fork bomb stops at --pids-limit.
func TestEngineResourcesPids(t *testing.T) {
	skipWithoutV1(t, "pids")
	e := newEnv(t)
	id := e.mustCove("run", "-d", "--name", "cengres-pids", "--pids-limit", "10", img,
		"sh", "-c", "(for i in $(seq 40); do sleep 60 & done) 2>/dev/null; exec sleep 60")
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) && cgroupFile(t, "pids", id, "pids.events") == "max 0" {
		time.Sleep(50 * time.Millisecond)
	}
	// The bomb's subshell died at the failed fork, freeing its slot.
	if cur, _ := strconv.Atoi(cgroupFile(t, "pids", id, "pids.current")); cur < 8 || cur > 10 {
		t.Errorf("pids.current = %d, want 8-10 (the limit is 10, 40 forks tried)", cur)
	}
	if ev := cgroupFile(t, "pids", id, "pids.events"); ev == "max 0" {
		t.Errorf("pids.events = %q: no fork was refused", ev)
	}
}

// cpuUsage is the container's cpuacct.usage in ns.
func cpuUsage(t *testing.T, id string) int64 {
	n, err := strconv.ParseInt(cgroupFile(t, "cpuacct", id, "cpuacct.usage"), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// --cpus 0.5 holds a busy loop at half a CPU (±25%); cove update changes it live.
func TestEngineResourcesCPUQuota(t *testing.T) {
	skipWithoutV1(t, "cpuacct")
	e := newEnv(t)
	id := e.mustCove("run", "-d", "--name", "cengres-cpu", "--cpus", "0.5", img, "sh", "-c", "while :; do :; done")
	share := func() float64 {
		time.Sleep(300 * time.Millisecond)
		u0, t0 := cpuUsage(t, id), time.Now()
		time.Sleep(2 * time.Second)
		return float64(cpuUsage(t, id)-u0) / float64(time.Since(t0).Nanoseconds())
	}
	s := share()
	t.Logf("--cpus 0.5: %.3f CPUs", s)
	if s < 0.375 || s > 0.625 {
		t.Errorf("--cpus 0.5: busy loop used %.2f CPUs, want 0.5 ± 25%%", s)
	}
	e.mustCove("update", "--cpus", "0.2", "cengres-cpu")
	s = share()
	t.Logf("--cpus 0.2 after update: %.3f CPUs", s)
	if s < 0.15 || s > 0.25 {
		t.Errorf("after update --cpus 0.2: busy loop used %.2f CPUs, want 0.2 ± 25%%", s)
	}
}

// dd with O_DIRECT runs at --device-write-bps (cgroup v1 blkio throttles
// direct I/O only).
func TestEngineResourcesBlkio(t *testing.T) {
	skipWithoutV1(t, "blkio")
	if _, err := os.Stat("/sys/dev/block/254:0"); err != nil {
		t.Skip("no /dev/vda (254:0) here")
	}
	e := newEnv(t)
	start := time.Now()
	e.mustCove("run", "--rm", "--device-write-bps", "/dev/vda:5mb", img,
		"dd", "if=/dev/zero", "of=/tmp/f", "bs=1M", "count=10", "oflag=direct")
	el := time.Since(start).Seconds()
	// 10 MiB at 5 MiB/s: 2 s (the first second's budget may be spent at once).
	rate := 10 / el
	t.Logf("dd oflag=direct at --device-write-bps 5mb: %.2f MiB/s", rate)
	if rate < 3.75 || rate > 6.25 {
		t.Errorf("dd at --device-write-bps 5mb: %.2f MiB/s (%.2f s), want 5 ± 25%%", rate, el)
	}
}

// cove update changes limits live, persists them for the next start, and
// refuses bad values without changing anything.
func TestEngineResourcesUpdate(t *testing.T) {
	skipWithoutV1(t, "memory")
	e := newEnv(t)
	id := e.mustCove("run", "-d", "--name", "cengres-up", "--memory", "32m", "--pids-limit", "20", img, "sleep", "60")
	e.mustCove("update", "--memory", "64m", "--pids-limit", "30", "--cpu-quota", "20000", "--restart", "on-failure:2", "cengres-up")
	for _, c := range []struct{ ctl, file, want string }{
		{"memory", "memory.limit_in_bytes", "67108864"},
		{"pids", "pids.max", "30"},
		{"cpu", "cpu.cfs_quota_us", "20000"},
	} {
		if got := cgroupFile(t, c.ctl, id, c.file); got != c.want {
			t.Errorf("after update: %s/%s = %q, want %q", c.ctl, c.file, got, c.want)
		}
	}
	for _, bad := range [][]string{{"--memory", "1m"}, {"--cpuset-cpus", "0-99"}, {"--pids-limit", "-7"}, {"--restart", "sometimes"}} {
		out, code := e.cove(append(append([]string{"update"}, bad...), "cengres-up")...)
		if code != 125 || !strings.Contains(out, bad[0]) {
			t.Errorf("update %v: exit %d, want 125 naming the flag:\n%s", bad, code, out)
		}
	}
	if got := cgroupFile(t, "memory", id, "memory.limit_in_bytes"); got != "67108864" {
		t.Errorf("a refused update changed memory.limit_in_bytes to %s", got)
	}
	e.mustCove("stop", "-t", "0", "cengres-up")
	e.mustCove("update", "--pids-limit", "40", "cengres-up")
	if got := e.inspect("cengres-up", "{{.HostConfig.Memory}} {{.HostConfig.PidsLimit}} {{.HostConfig.CpuQuota}} {{.HostConfig.restart}}"); got != "6.7108864e+07 40 20000 on-failure:2" {
		t.Errorf("inspect after updates: %q", got)
	}
	e.mustCove("start", "cengres-up")
	if got := cgroupFile(t, "pids", id, "pids.max"); got != "40" {
		t.Errorf("pids.max after restart = %q, want the updated 40", got)
	}
}

// update --restart reaches the running container's supervisor.
func TestEngineResourcesUpdateRestart(t *testing.T) {
	e := newEnv(t)
	e.mustCove("run", "-d", "--name", "cengres-rp", img, "sh", "-c", "sleep 0.5; exit 3")
	e.mustCove("update", "--restart", "on-failure:2", "cengres-rp")
	deadline := time.Now().Add(10 * time.Second)
	got := ""
	for time.Now().Before(deadline) {
		got = e.inspect("cengres-rp", "{{.RestartCount}} {{.State.Status}} {{.State.ExitCode}}")
		if got == "2 exited 3" && e.inspect("cengres-rp", "{{.State.Restarting}}") == "false" {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if got != "2 exited 3" {
		t.Errorf("after update --restart on-failure:2 of a running container: %q, want 2 restarts then exited 3", got)
	}
}
