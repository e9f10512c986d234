package cgroups

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// waitPids polls until the cgroup holds n processes.
func waitPids(t *testing.T, m Manager, n int) []int {
	t.Helper()
	var pids []int
	for i := 0; i < 500; i++ {
		var err error
		if pids, err = m.Pids(); err != nil {
			t.Fatal(err)
		}
		if len(pids) == n {
			return pids
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("cgroup holds %v, want %d processes", pids, n)
	return nil
}

func killedBySignal(err error, sig syscall.Signal) bool {
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return false
	}
	ws, ok := ee.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == sig
}

// alive reports whether pid runs (exists and is not a zombie awaiting its reaper).
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + itoa(int64(pid)) + "/stat")
	if err != nil {
		return false
	}
	_, rest, _ := strings.Cut(string(b), ") ")
	return !strings.HasPrefix(rest, "Z") && !strings.HasPrefix(rest, "X")
}

func TestApplyKillDestroy(t *testing.T) {
	m := newTestManager(t, true)
	cmd := exec.Command("sh", "-c", "read x; sleep 100 & sleep 100 & wait")
	startInCgroup(t, m, cmd).WriteString("go\n")
	pid := cmd.Process.Pid
	pids := waitPids(t, m, 3)
	if !slices.Contains(pids, pid) {
		t.Fatalf("pids %v lack %d", pids, pid)
	}
	// /proc/<pid>/cgroup names the container cgroup in every hierarchy.
	b, err := os.ReadFile("/proc/" + itoa(int64(pid)) + "/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	l := hostLayout(t)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	for k, d := range m.paths {
		root := m.roots[k]
		want := strings.TrimPrefix(d, root)
		found := false
		for _, line := range lines {
			f := strings.SplitN(line, ":", 3)
			if len(f) == 3 && f[2] == want && ((k == UnifiedKey && f[1] == "") || slices.Contains(strings.Split(f[1], ","), k)) {
				found = true
			}
		}
		if !found {
			t.Errorf("/proc/%d/cgroup has no %s entry %q:\n%s", pid, k, want, b)
		}
	}
	// On pure v2 the parent delegates the controllers to the container.
	if l.mode == Unified {
		parent := filepath.Dir(m.paths[UnifiedKey])
		sub, err := readFile(parent, "cgroup.subtree_control")
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []string{"cpu", "memory", "pids"} {
			if !slices.Contains(strings.Fields(sub), c) {
				t.Errorf("%s/cgroup.subtree_control = %q, lacks %s", parent, sub, c)
			}
		}
	}
	if err := m.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); !killedBySignal(err, syscall.SIGKILL) {
		t.Errorf("sh exit: %v, want killed by SIGKILL", err)
	}
	for _, p := range pids {
		if alive(p) && p != pid {
			t.Errorf("pid %d still alive after Kill", p)
		}
	}
	if got, _ := m.Pids(); len(got) != 0 {
		t.Errorf("pids after Kill: %v", got)
	}
	if err := m.Destroy(); err != nil {
		t.Fatal(err)
	}
	for _, d := range m.dirs() {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Errorf("%s: %v after Destroy", d, err)
		}
	}
	if err := m.Destroy(); err != nil {
		t.Errorf("second Destroy: %v", err)
	}
}

func TestDestroyKillsLiveProcesses(t *testing.T) {
	m := newTestManager(t, false)
	cmd := exec.Command("sleep", "100")
	startInCgroup(t, m, cmd)
	// Load rebuilds the manager as a later runtime command would.
	lm := Load(m.Paths())
	waitPids(t, lm, 1)
	if err := lm.Destroy(); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); !killedBySignal(err, syscall.SIGKILL) {
		t.Errorf("sleep exit: %v, want killed by SIGKILL", err)
	}
	for _, d := range m.dirs() {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Errorf("%s: %v after Destroy", d, err)
		}
	}
}

// TestKillFreezer covers the freeze, signal, thaw fallback used where
// cgroup.kill is missing.
func TestKillFreezer(t *testing.T) {
	m := newTestManager(t, false)
	cmd := exec.Command("sh", "-c", "read x; sleep 100 & wait")
	startInCgroup(t, m, cmd).WriteString("go\n")
	waitPids(t, m, 2)
	thaw, err := m.freeze()
	if err != nil {
		t.Fatal(err)
	}
	pids, _ := m.Pids()
	signalAll(pids)
	if err := thaw(); err != nil {
		t.Fatal(err)
	}
	waitPids(t, m, 0)
	if err := cmd.Wait(); !killedBySignal(err, syscall.SIGKILL) {
		t.Errorf("sh exit: %v, want killed by SIGKILL", err)
	}
}

func TestOOMKill(t *testing.T) {
	m := newTestManager(t, false)
	if err := m.Set(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(32 << 20), Swap: i64(32 << 20)}}); err != nil {
		t.Fatal(err)
	}
	cmd := helperCmd("alloc")
	w := startInCgroup(t, m, cmd)
	w.WriteString("go\n")
	err := cmd.Wait()
	if !killedBySignal(err, syscall.SIGKILL) {
		t.Fatalf("helper allocating 100 MiB under a 32 MiB limit: %v, want OOM kill", err)
	}
	dir, v2, _ := m.controller("memory", "memory")
	file, key := "memory.oom_control", "oom_kill "
	if v2 {
		file, key = "memory.events", "oom_kill "
	}
	s, err := readFile(dir, file)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(s, key) || strings.Contains(s, key+"0\n") || strings.HasSuffix(s, key+"0") {
		t.Errorf("%s shows no OOM kill:\n%s", file, s)
	}
}

var helperDeviceRules = []specs.LinuxDeviceCgroup{
	{Allow: true, Type: "c", Major: i64(1), Minor: i64(3), Access: "rwm"},
	{Allow: true, Type: "c", Major: i64(1), Minor: i64(5), Access: "rwm"},
	{Allow: false, Type: "c", Major: i64(1), Minor: i64(5), Access: "r"},
}

func runDevicesHelper(t *testing.T, m *manager) {
	t.Helper()
	cmd := helperCmd("devices")
	var out strings.Builder
	cmd.Stderr = &out
	w := startInCgroup(t, m, cmd)
	w.WriteString("go\n")
	if err := cmd.Wait(); err != nil {
		t.Fatalf("devices helper: %v\n%s", err, out.String())
	}
}

func TestDevicesEnforced(t *testing.T) {
	m := newTestManager(t, false)
	if err := m.Set(&specs.LinuxResources{Devices: helperDeviceRules}); err != nil {
		t.Fatal(err)
	}
	if d, ok := m.paths["devices"]; ok {
		got, err := readFile(d, "devices.list")
		if err != nil {
			t.Fatal(err)
		}
		if want := "c 1:3 rwm\nc 1:5 wm"; got != want {
			t.Errorf("devices.list = %q, want %q", got, want)
		}
	}
	runDevicesHelper(t, m)
}

// TestDevicesBPF runs the eBPF device filter on the cgroup2 directory, also
// on hybrid hosts (where Set would use the v1 devices controller), and
// checks that an update replaces the previous program.
func TestDevicesBPF(t *testing.T) {
	m := newTestManager(t, false)
	u, ok := m.paths[UnifiedKey]
	if !ok {
		t.Skip("no cgroup2 hierarchy")
	}
	first, err := parseDeviceRules([]specs.LinuxDeviceCgroup{{Allow: true, Type: "c", Major: i64(1), Minor: i64(3), Access: "r"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := setDevicesBPF(u, first); err != nil {
		t.Fatal(err)
	}
	rules, err := parseDeviceRules(helperDeviceRules)
	if err != nil {
		t.Fatal(err)
	}
	if err := setDevicesBPF(u, rules); err != nil {
		t.Fatal(err)
	}
	fd, err := os.Open(u)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := attachedDevicePrograms(int(fd.Fd()))
	fd.Close()
	if err != nil || len(ids) != 1 {
		t.Fatalf("attached device programs %v, %v; want exactly one", ids, err)
	}
	runDevicesHelper(t, m)
}

// TestRelativePath creates a cgroup below the test's own cgroup.
func TestRelativePath(t *testing.T) {
	requireRoot(t)
	name := "cove-test-rel-" + itoa(int64(os.Getpid()))
	mg, err := New(name, "")
	if err != nil {
		t.Fatal(err)
	}
	m := mg.(*manager)
	t.Cleanup(func() {
		if err := m.Destroy(); err != nil {
			t.Error(err)
		}
	})
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	own, err := parseProcCgroup(strings.NewReader(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	for k, d := range m.paths {
		o := own[k]
		if k == UnifiedKey {
			o = own[""]
		}
		if want := filepath.Join(m.roots[k], o, name); d != want {
			t.Errorf("%s: %s, want %s", k, d, want)
		}
	}
	if err := m.Create(); err != nil {
		t.Fatal(err)
	}
	for _, d := range m.dirs() {
		if _, err := os.Stat(d); err != nil {
			t.Error(err)
		}
	}
}
