package engine_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// cgroupV2 reports whether the host has the unified hierarchy only
// (the cgroup v2 VM of tests/cgroupv2/run.sh); the hybrid host runs the
// v1 controllers.
func cgroupV2() bool {
	_, err := os.Stat("/sys/fs/cgroup/cgroup.controllers")
	return err == nil
}

// cgroupFile reads a container's cgroup file: controller/cove/ID/file on
// v1, cove/ID/file on v2 (controller unused).
func cgroupFile(t *testing.T, controller, id, file string) string {
	t.Helper()
	dir := filepath.Join("/sys/fs/cgroup", controller, "cove", id)
	if cgroupV2() {
		dir = filepath.Join("/sys/fs/cgroup", "cove", id)
	}
	b, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		t.Fatalf("read cgroup file: %v", err)
	}
	return strings.TrimSpace(string(b))
}

// skipWithout skips unless the host has the v1 controller, or on v2 its
// counterpart (cpuacct: cpu, blkio: io) in the root's cgroup.controllers.
func skipWithout(t *testing.T, controller string) {
	t.Helper()
	if cgroupV2() {
		v2 := map[string]string{"cpuacct": "cpu", "blkio": "io"}[controller]
		if v2 == "" {
			v2 = controller
		}
		b, _ := os.ReadFile("/sys/fs/cgroup/cgroup.controllers")
		if !slices.Contains(strings.Fields(string(b)), v2) {
			t.Skipf("no cgroup v2 %s controller on this host", v2)
		}
		return
	}
	if _, err := os.Stat(filepath.Join("/sys/fs/cgroup", controller, "cgroup.procs")); err != nil {
		t.Skipf("no cgroup v1 %s hierarchy on this host", controller)
	}
}

// skipWithoutV1 is skipWithout, under the name older tests call.
func skipWithoutV1(t *testing.T, controller string) {
	t.Helper()
	skipWithout(t, controller)
}

// testDisk is a block device for the I/O limits: the host's /dev/vda
// (254:0), else the cgroup v2 VM's RAM disk /dev/ram0 (1:0, brd); "" if
// neither exists.
func testDisk() (path, majMin string) {
	for _, d := range []struct{ path, majMin string }{{"/dev/vda", "254:0"}, {"/dev/ram0", "1:0"}} {
		if _, err := os.Stat("/sys/dev/block/" + d.majMin); err == nil {
			if _, err := os.Stat(d.path); err == nil {
				return d.path, d.majMin
			}
		}
	}
	return "", ""
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
	skipWithout(t, "memory")
	e := newEnv(t)
	args := []string{"run", "-d", "--name", "cengres-cg", "--memory", "32m", "--memory-reservation", "16m",
		"--memory-swap", "48m", "--cpus", "0.5", "--cpu-shares", "512", "--cpuset-cpus", "0", "--pids-limit", "20",
		"--oom-score-adj", "300"}
	disk, majMin := testDisk()
	if disk != "" {
		args = append(args, "--device-write-bps", disk+":5mb", "--device-read-iops", majMin+":100")
	} else {
		t.Log("no /dev/vda or /dev/ram0: I/O limits not checked")
	}
	id := e.mustCove(append(args, img, "sleep", "60")...)
	type file struct{ ctl, file, want string }
	files := []file{
		{"memory", "memory.limit_in_bytes", "33554432"},
		{"memory", "memory.soft_limit_in_bytes", "16777216"},
		{"cpu", "cpu.cfs_quota_us", "50000"},
		{"cpu", "cpu.cfs_period_us", "100000"},
		{"cpu", "cpu.shares", "512"},
		{"cpuset", "cpuset.cpus", "0"},
		{"pids", "pids.max", "20"},
	}
	if disk != "" {
		files = append(files, file{"blkio", "blkio.throttle.write_bps_device", majMin + " 5242880"},
			file{"blkio", "blkio.throttle.read_iops_device", majMin + " 100"})
	}
	if _, err := os.Stat("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes"); err == nil {
		files = append(files, file{"memory", "memory.memsw.limit_in_bytes", "50331648"})
	}
	if cgroupV2() {
		// v2: memory.swap.max is swap alone (48m-32m), cpu.weight is
		// cpu.shares scaled to [1, 10000], io.max holds a device's limits
		// on one line.
		files = []file{
			{"", "memory.max", "33554432"},
			{"", "memory.low", "16777216"},
			{"", "memory.swap.max", "16777216"},
			{"", "cpu.max", "50000 100000"},
			{"", "cpu.weight", "20"},
			{"", "cpuset.cpus", "0"},
			{"", "pids.max", "20"},
		}
		if disk != "" {
			files = append(files, file{"", "io.max", majMin + " rbps=max wbps=5242880 riops=100 wiops=max"})
		}
	}
	for _, c := range files {
		if got := cgroupFile(t, c.ctl, id, c.file); got != c.want {
			t.Errorf("%s/%s = %q, want %q", c.ctl, c.file, got, c.want)
		}
	}
	pid := e.inspect("cengres-cg", "{{.State.Pid}}")
	if b, _ := os.ReadFile("/proc/" + pid + "/oom_score_adj"); strings.TrimSpace(string(b)) != "300" {
		t.Errorf("oom_score_adj = %q, want 300", b)
	}
	got := e.inspect("cengres-cg", "{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}} {{.HostConfig.PidsLimit}} {{.HostConfig.CpusetCpus}} {{range .HostConfig.BlkioDeviceWriteBps}}{{.Path}}{{end}}")
	if got != "3.3554432e+07 5e+08 20 0 "+disk {
		t.Errorf("inspect HostConfig: %q", got)
	}
}

// A memory hog is OOM-killed and inspect says so.
func TestEngineResourcesOOM(t *testing.T) {
	skipWithout(t, "memory")
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
	skipWithout(t, "pids")
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

// cpuUsage is the container's CPU time in ns: v1 cpuacct.usage, v2
// cpu.stat usage_usec.
func cpuUsage(t *testing.T, id string) int64 {
	t.Helper()
	if cgroupV2() {
		for _, line := range strings.Split(cgroupFile(t, "", id, "cpu.stat"), "\n") {
			if v, ok := strings.CutPrefix(line, "usage_usec "); ok {
				n, err := strconv.ParseInt(v, 10, 64)
				if err != nil {
					t.Fatal(err)
				}
				return n * 1000
			}
		}
		t.Fatal("no usage_usec in cpu.stat")
	}
	n, err := strconv.ParseInt(cgroupFile(t, "cpuacct", id, "cpuacct.usage"), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// --cpus 0.5 holds a busy loop at half a CPU (±25%); cove update changes it live.
func TestEngineResourcesCPUQuota(t *testing.T) {
	skipWithout(t, "cpuacct")
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

// dd with O_DIRECT runs at --device-write-bps, and on cgroup v2 buffered
// dd with fsync too (cgroup v1 blkio throttles direct I/O only). On the host dd writes a file in the container's layer
// on /dev/vda; in the cgroup v2 VM, whose files are all on tmpfs, it
// writes the RAM disk /dev/ram0 itself, passed in with --device.
func TestEngineResourcesBlkio(t *testing.T) {
	skipWithout(t, "blkio")
	disk, _ := testDisk()
	if disk == "" {
		t.Skip("no /dev/vda (254:0) or /dev/ram0 (1:0, brd) here")
	}
	e := newEnv(t)
	args := []string{"run", "--rm", "--device-write-bps", disk + ":5mb"}
	of := "/tmp/f"
	if disk != "/dev/vda" {
		args, of = append(args, "--device", disk), disk
	}
	// Buffered writes are throttled at writeback on v2 only (v1 blkio
	// never sees the writeback of a cgroup's dirty pages).
	modes := []string{"oflag=direct"}
	if cgroupV2() {
		modes = append(modes, "conv=fsync")
	}
	for _, mode := range modes {
		// dd is timed inside the container (/proc/uptime before and after),
		// not with the container's start, slow under the VM's emulation.
		dd := "read a _ </proc/uptime; dd if=/dev/zero of=" + of + " bs=1M count=10 " + mode + " 2>/dev/null; read b _ </proc/uptime; echo $a $b"
		out := e.mustCove(append(args, img, "sh", "-c", dd)...)
		var t0, t1 float64
		if _, err := fmt.Sscan(out, &t0, &t1); err != nil || t1 <= t0 {
			t.Fatalf("dd %s: start and end uptimes: %q", mode, out)
		}
		el := t1 - t0
		// 10 MiB at 5 MiB/s: 2 s (the first second's budget may be spent at once).
		rate := 10 / el
		t.Logf("dd %s at --device-write-bps 5mb: %.2f MiB/s", mode, rate)
		if rate < 3.75 || rate > 6.25 {
			t.Errorf("dd %s at --device-write-bps 5mb: %.2f MiB/s (%.2f s), want 5 ± 25%%", mode, rate, el)
		}
	}
}

// cove update changes limits live, persists them for the next start, and
// refuses bad values without changing anything.
func TestEngineResourcesUpdate(t *testing.T) {
	skipWithout(t, "memory")
	e := newEnv(t)
	id := e.mustCove("run", "-d", "--name", "cengres-up", "--memory", "32m", "--pids-limit", "20", img, "sleep", "60")
	e.mustCove("update", "--memory", "64m", "--pids-limit", "30", "--cpu-quota", "20000", "--restart", "on-failure:2", "cengres-up")
	memFile := "memory.limit_in_bytes"
	want := []struct{ ctl, file, want string }{
		{"memory", memFile, "67108864"},
		{"pids", "pids.max", "30"},
		{"cpu", "cpu.cfs_quota_us", "20000"},
	}
	if cgroupV2() {
		memFile = "memory.max"
		want[0].file, want[2].file, want[2].want = memFile, "cpu.max", "20000 100000"
	}
	for _, c := range want {
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
	if got := cgroupFile(t, "memory", id, memFile); got != "67108864" {
		t.Errorf("a refused update changed %s to %s", memFile, got)
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

// The remaining limits: --cpuset-mems, --blkio-weight (where the kernel has
// a weight file), --oom-kill-disable (v1 only: v2 has no switch), docker's
// default swap (as much as memory), and an update that raises memory above
// the old memory+swap limit (v1 must write memsw first).
func TestEngineResourcesMore(t *testing.T) {
	skipWithout(t, "memory")
	e := newEnv(t)
	out, stderr, code := e.split("run", "-d", "--name", "cengres-more", "--memory", "32m", "--cpuset-mems", "0",
		"--blkio-weight", "500", "--oom-kill-disable", img, "sleep", "60")
	if code != 0 {
		t.Fatalf("run: exit %d: %s", code, stderr)
	}
	id := strings.TrimSpace(out)
	v2 := cgroupV2()
	// Docker's behaviour: v2 has no switch, so the flag is ignored aloud.
	if warned := strings.Contains(stderr, "--oom-kill-disable is ignored"); warned != v2 {
		t.Errorf("cgroup v2 %v, warning about --oom-kill-disable %v: %q", v2, warned, stderr)
	}
	if got := cgroupFile(t, "cpuset", id, "cpuset.mems"); got != "0" {
		t.Errorf("cpuset.mems = %q, want 0", got)
	}
	check := func(ctl, file, want string) {
		t.Helper()
		if got := cgroupFile(t, ctl, id, file); got != want {
			t.Errorf("%s = %q, want %q", file, got, want)
		}
	}
	exists := func(ctl, file string) bool {
		dir := filepath.Join("/sys/fs/cgroup", ctl, "cove", id)
		if v2 {
			dir = filepath.Join("/sys/fs/cgroup", "cove", id)
		}
		_, err := os.Stat(filepath.Join(dir, file))
		return err == nil
	}
	switch {
	case v2 && exists("", "io.bfq.weight"):
		check("", "io.bfq.weight", "default 500")
	case v2 && exists("", "io.weight"):
		check("", "io.weight", "default 4950") // 500 of [10, 1000] scaled to [1, 10000]
	case !v2 && exists("blkio", "blkio.bfq.weight"):
		check("blkio", "blkio.bfq.weight", "500")
	case !v2 && exists("blkio", "blkio.weight"):
		check("blkio", "blkio.weight", "500")
	default:
		t.Log("no blkio/io weight file on this kernel: --blkio-weight not checked")
	}
	if v2 {
		check("", "memory.max", "33554432")
		check("", "memory.swap.max", "33554432")
	} else {
		check("memory", "memory.limit_in_bytes", "33554432")
		if !strings.Contains(cgroupFile(t, "memory", id, "memory.oom_control"), "oom_kill_disable 1") {
			t.Errorf("memory.oom_control: the OOM killer is not disabled:\n%s", cgroupFile(t, "memory", id, "memory.oom_control"))
		}
		if exists("memory", "memory.memsw.limit_in_bytes") {
			check("memory", "memory.memsw.limit_in_bytes", "67108864")
		}
	}
	e.mustCove("update", "--memory", "128m", "--memory-swap", "256m", "cengres-more")
	if v2 {
		check("", "memory.max", "134217728")
		check("", "memory.swap.max", "134217728")
	} else {
		check("memory", "memory.limit_in_bytes", "134217728")
		if exists("memory", "memory.memsw.limit_in_bytes") {
			check("memory", "memory.memsw.limit_in_bytes", "268435456")
		}
	}
}
