package cgroups

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// TestFreezeThaw freezes a shell loop and checks the kernel's view: the
// freezer state (v1) or cgroup.events (v2), and the task's state in /proc.
func TestFreezeThaw(t *testing.T) {
	m := newTestManager(t, false)
	cmd := exec.Command("sh", "-c", "read x; while :; do :; done")
	startInCgroup(t, m, cmd).WriteString("go\n")
	waitPids(t, m, 1)
	if err := m.Freeze(); err != nil {
		t.Fatal(err)
	}
	dir, v2, err := m.freezerDir()
	if err != nil {
		t.Fatal(err)
	}
	if v2 {
		if ev, _ := readKV(dir, "cgroup.events"); ev["frozen"] != 1 {
			t.Errorf("cgroup.events: frozen %d, want 1", ev["frozen"])
		}
	} else if s, _ := readFile(dir, "freezer.state"); s != "FROZEN" {
		t.Errorf("freezer.state %q, want FROZEN", s)
	}
	if f, err := m.Frozen(); err != nil || !f {
		t.Errorf("Frozen() = %v, %v after Freeze", f, err)
	}
	// A frozen task does not run: its CPU time stays put.
	before := procCPU(t, cmd.Process.Pid)
	time.Sleep(200 * time.Millisecond)
	if after := procCPU(t, cmd.Process.Pid); after != before {
		t.Errorf("frozen task used CPU: %s -> %s", before, after)
	}
	if err := m.Thaw(); err != nil {
		t.Fatal(err)
	}
	if f, err := m.Frozen(); err != nil || f {
		t.Errorf("Frozen() = %v, %v after Thaw", f, err)
	}
	time.Sleep(200 * time.Millisecond)
	if after := procCPU(t, cmd.Process.Pid); after == before {
		t.Errorf("thawed task used no CPU")
	}
}

// procCPU returns utime and stime of pid from /proc/<pid>/stat.
func procCPU(t *testing.T, pid int) string {
	t.Helper()
	s, err := readFile("/proc/"+itoa(int64(pid)), "stat")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, _ := strings.Cut(s, ") ")
	f := strings.Fields(rest)
	return f[11] + " " + f[12]
}

// TestUpdateRollback: an update whose last write fails leaves the files of
// its earlier writes as they were.
func TestUpdateRollback(t *testing.T) {
	m := newTestManager(t, false)
	if err := m.Set(&specs.LinuxResources{Pids: &specs.LinuxPids{Limit: i64(42)}}); err != nil {
		t.Fatal(err)
	}
	pidsDir, _, _ := m.controller("pids", "pids")
	bad := &specs.LinuxResources{
		Pids: &specs.LinuxPids{Limit: i64(7)},
		CPU:  &specs.LinuxCPU{Cpus: "4000-4001"},
	}
	// cpuset comes before pids in Set's order: make pids fail instead when
	// the host has no cpuset controller for the cgroup.
	if _, _, err := m.controller("cpuset", "cpuset"); err != nil {
		t.Skip("no cpuset controller")
	}
	if err := m.Update(bad); err == nil {
		t.Fatal("update with cpus 4000-4001 succeeded")
	}
	if s, _ := readFile(pidsDir, "pids.max"); s != "42" {
		t.Errorf("pids.max %q after a failed update, want 42", s)
	}
	good := &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: i64(7)}, CPU: &specs.LinuxCPU{Shares: u64(512)}}
	if err := m.Update(good); err != nil {
		t.Fatal(err)
	}
	if s, _ := readFile(pidsDir, "pids.max"); s != "7" {
		t.Errorf("pids.max %q after update, want 7", s)
	}
}

// TestStats checks the counters a running process must move.
func TestStats(t *testing.T) {
	m := newTestManager(t, false)
	if err := m.Set(&specs.LinuxResources{Pids: &specs.LinuxPids{Limit: i64(50)}, Memory: &specs.LinuxMemory{Limit: i64(64 << 20)}}); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sh", "-c", "read x; i=0; while [ $i -lt 2000 ]; do i=$((i+1)); done; sleep 100 & wait")
	startInCgroup(t, m, cmd).WriteString("go\n")
	waitPids(t, m, 2)
	s, err := m.Stats()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(s)
	t.Logf("stats: %s", b)
	if s.Pids.Current != 2 || s.Pids.Limit != 50 {
		t.Errorf("pids %+v, want current 2 limit 50", s.Pids)
	}
	if s.Memory.Usage.Usage == 0 || s.Memory.Usage.Limit != 64<<20 {
		t.Errorf("memory usage %+v, want usage > 0, limit 64 MiB", s.Memory.Usage)
	}
	if s.CPU.Usage.Total == 0 {
		t.Errorf("cpu usage total 0 after a busy loop")
	}
	if _, _, err := m.controller("cpuset", "cpuset"); err == nil && len(s.CPUSet.CPUs) == 0 {
		t.Errorf("cpuset cpus empty")
	}
	if len(s.Memory.Raw) == 0 {
		t.Errorf("memory raw stats empty")
	}
}

// TestOOMEvents: an allocation past the limit produces an event.
func TestOOMEvents(t *testing.T) {
	m := newTestManager(t, false)
	if err := m.Set(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(32 << 20), Swap: i64(32 << 20)}}); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	defer close(stop)
	ch, err := m.OOMEvents(stop)
	if err != nil {
		t.Fatal(err)
	}
	cmd := helperCmd("alloc")
	startInCgroup(t, m, cmd).WriteString("go\n")
	cmd.Wait()
	select {
	case _, ok := <-ch:
		if !ok {
			t.Fatal("event channel closed without an event")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no OOM event within 10 s")
	}
}
