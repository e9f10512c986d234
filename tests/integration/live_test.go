package integration

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-spec/specs-go/features"

	"cove/tests/internal/testenv"
)

// pureV2 reports whether the host is cgroup v2 only (the VM lane).
func pureV2() bool { return cgroupMount("memory") == "/sys/fs/cgroup" }

// initPid returns the container's init pid from state.
func (e *env) initPid(id string) int {
	e.t.Helper()
	return int(e.state(id)["pid"].(float64))
}

// runtimeStdin runs cove-runc with stdin and returns combined output.
func (e *env) runtimeStdin(stdin string, args ...string) (string, error) {
	cmd := exec.Command(runtimeBin, append([]string{"--root", e.root}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	return testenv.CombinedOutput(cmd, 30*time.Second)
}

func TestLivePs(t *testing.T) {
	e := newEnv(t, []string{"sleep", "1000"}, nil)
	e.mustRuntime("run", "-d", "--bundle", e.bundle, "live-ps")
	init := e.initPid("live-ps")
	execd, _ := strconv.Atoi(execPid(t, e, "live-ps"))

	var pids []int
	out := e.mustRuntime("ps", "--format", "json", "live-ps")
	if err := json.Unmarshal([]byte(out), &pids); err != nil {
		t.Fatalf("ps --format json: %v: %q", err, out)
	}
	slices.Sort(pids)
	if want := []int{init, execd}; !slices.Equal(pids, want) {
		t.Errorf("ps json %v, want %v", pids, want)
	}

	if _, err := exec.Command("ps", "-ef").Output(); err != nil {
		t.Skipf("host ps -ef fails (%v): table format not checked", err)
	}
	lines := strings.Split(strings.TrimRight(e.mustRuntime("ps", "live-ps"), "\n"), "\n")
	col := slices.Index(strings.Fields(lines[0]), "PID")
	if col < 0 {
		t.Fatalf("ps table header without PID: %q", lines[0])
	}
	var got []int
	for _, l := range lines[1:] {
		p, _ := strconv.Atoi(strings.Fields(l)[col])
		got = append(got, p)
	}
	slices.Sort(got)
	if want := []int{init, execd}; !slices.Equal(got, want) {
		t.Errorf("ps table rows for pids %v, want %v:\n%s", got, want, strings.Join(lines, "\n"))
	}
	// Arguments after the id go to ps.
	lines = strings.Split(strings.TrimSpace(e.mustRuntime("ps", "live-ps", "-o", "pid,comm")), "\n")
	if len(lines) != 3 || !strings.Contains(lines[1], "sleep") {
		t.Errorf("ps -o pid,comm: %q", lines)
	}
	if out, err := e.runtime("ps", "--format", "yaml", "live-ps"); err == nil || !strings.Contains(out, "format") {
		t.Errorf("ps --format yaml: %v %q, want an error naming the format", err, out)
	}
}

// counter runs a loop bumping a number in /tmp/c of the container's root.
const counter = `i=0; while :; do i=$((i+1)); echo $i > /tmp/c; sleep 0.05; done`

func readCounter(t *testing.T, e *env) int {
	t.Helper()
	b, _ := os.ReadFile(filepath.Join(e.bundle, "rootfs/tmp/c"))
	n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return n
}

// freezerState reads the kernel's view of the container's freezer.
func freezerState(t *testing.T, pid int) string {
	t.Helper()
	if pureV2() {
		u := containerCgroup(t, pid, "unified")
		if strings.Contains(readTrim(t, filepath.Join(u, "cgroup.events")), "frozen 1") {
			return "FROZEN"
		}
		return "THAWED"
	}
	return readTrim(t, filepath.Join(containerCgroup(t, pid, "freezer"), "freezer.state"))
}

func TestLivePauseResume(t *testing.T) {
	e := newEnv(t, sh(counter), nil)
	id := "live-pause"
	if out, err := e.runtime("pause", id); err == nil {
		t.Fatalf("pause of a missing container succeeded: %s", out)
	}
	e.mustRuntime("create", "--bundle", e.bundle, id)
	if out, err := e.runtime("pause", id); err == nil || !strings.Contains(out, "created") {
		t.Errorf("pause of a created container: %v %q, want an error saying it is created", err, out)
	}
	e.mustRuntime("start", id)
	pid := e.initPid(id)
	time.Sleep(300 * time.Millisecond)
	if out, err := e.runtime("resume", id); err == nil || !strings.Contains(out, "not paused") {
		t.Errorf("resume of a running container: %v %q", err, out)
	}

	e.mustRuntime("pause", id)
	if st := e.state(id)["status"]; st != "paused" {
		t.Errorf("status after pause %v, want paused", st)
	}
	if fs := freezerState(t, pid); fs != "FROZEN" {
		t.Errorf("freezer after pause: %s", fs)
	}
	a := readCounter(t, e)
	time.Sleep(400 * time.Millisecond)
	if b := readCounter(t, e); b != a {
		t.Errorf("counter advanced while paused: %d -> %d", a, b)
	}
	if out, err := e.runtime("exec", id, "true"); err == nil || !strings.Contains(out, "paused") {
		t.Errorf("exec into a paused container: %v %q, want an error saying it is paused", err, out)
	}
	// --ignore-paused: the process joins the frozen cgroup and runs only
	// after resume.
	ip := exec.Command(runtimeBin, "--root", e.root, "exec", "-d", "--ignore-paused", id, "sh", "-c", "echo x > /tmp/ip")
	if err := ip.Start(); err != nil {
		t.Fatal(err)
	}
	ipDone := make(chan error, 1)
	go func() { ipDone <- ip.Wait() }()
	time.Sleep(300 * time.Millisecond)
	if _, err := os.Stat(filepath.Join(e.bundle, "rootfs/tmp/ip")); err == nil {
		t.Errorf("exec --ignore-paused ran while the container was paused")
	}
	if out, err := e.runtime("pause", id); err == nil {
		t.Errorf("second pause succeeded: %q", out)
	}
	if st := e.state(id)["status"]; st != "paused" {
		t.Errorf("status after refused pause %v", st)
	}

	e.mustRuntime("resume", id)
	if st := e.state(id)["status"]; st != "running" {
		t.Errorf("status after resume %v, want running", st)
	}
	select {
	case err := <-ipDone:
		if err != nil {
			t.Errorf("exec --ignore-paused: %v", err)
		}
	case <-time.After(10 * time.Second):
		ip.Process.Kill()
		t.Errorf("exec --ignore-paused still waiting 10 s after resume")
	}
	for i := 0; i < 50; i++ {
		if _, err := os.Stat(filepath.Join(e.bundle, "rootfs/tmp/ip")); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := os.Stat(filepath.Join(e.bundle, "rootfs/tmp/ip")); err != nil {
		t.Errorf("exec --ignore-paused did not run after resume: %v", err)
	}
	if fs := freezerState(t, pid); fs != "THAWED" {
		t.Errorf("freezer after resume: %s", fs)
	}
	a = readCounter(t, e)
	time.Sleep(400 * time.Millisecond)
	if b := readCounter(t, e); b <= a {
		t.Errorf("counter stuck after resume: %d -> %d", a, b)
	}

	// SIGKILL reaches a paused container.
	e.mustRuntime("pause", id)
	e.mustRuntime("kill", id, "KILL")
	for i := 0; i < 100 && alive(pid); i++ {
		time.Sleep(20 * time.Millisecond)
	}
	if alive(pid) {
		t.Fatalf("paused container survived kill KILL")
	}
	if st := e.state(id)["status"]; st != "stopped" {
		t.Errorf("status after kill of paused %v", st)
	}
	e.mustRuntime("delete", id)

	// delete --force of a paused container.
	e.mustRuntime("run", "-d", "--bundle", e.bundle, id)
	pid = e.initPid(id)
	e.mustRuntime("pause", id)
	e.mustRuntime("delete", "--force", id)
	if alive(pid) {
		t.Errorf("paused container's init alive after delete --force")
	}
}

// liveCgroupFiles reads the control files update writes, keyed by a short
// name, for the container with init pid.
func liveCgroupFiles(t *testing.T, pid int) map[string]string {
	t.Helper()
	out := map[string]string{}
	read := func(key, ctrl, file string) {
		if b, err := os.ReadFile(filepath.Join(containerCgroup(t, pid, ctrl), file)); err == nil {
			out[key] = strings.TrimSpace(string(b))
		}
	}
	if pureV2() {
		read("memory", "memory", "memory.max")
		read("cpu", "cpu", "cpu.max")
		read("shares", "cpu", "cpu.weight")
		read("pids", "pids", "pids.max")
		read("cpus", "cpuset", "cpuset.cpus")
		read("weight", "io", "io.bfq.weight")
		if _, ok := out["weight"]; !ok {
			read("weight", "io", "io.weight")
		}
		return out
	}
	read("memory", "memory", "memory.limit_in_bytes")
	read("swap", "memory", "memory.memsw.limit_in_bytes")
	read("cpu", "cpu", "cpu.cfs_quota_us")
	read("shares", "cpu", "cpu.shares")
	read("pids", "pids", "pids.max")
	read("cpus", "cpuset", "cpuset.cpus")
	read("weight", "blkio", "blkio.weight")
	if _, ok := out["weight"]; !ok {
		read("weight", "blkio", "blkio.bfq.weight")
	}
	return out
}

// savedResources reads the resources recorded in the container's state.
func savedResources(t *testing.T, e *env, id string) (*specs.LinuxResources, []byte) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(e.root, id, "state.json"))
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		Spec specs.Spec `json:"spec"`
	}
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	return st.Spec.Linux.Resources, b
}

func TestLiveUpdate(t *testing.T) {
	e := newEnv(t, []string{"sleep", "1000"}, func(s *specs.Spec) {
		s.Linux.Resources = &specs.LinuxResources{
			Memory: &specs.LinuxMemory{Limit: ptr(int64(128 << 20))},
			Pids:   &specs.LinuxPids{Limit: ptr(int64(100))},
		}
	})
	id := "live-update"
	e.mustRuntime("run", "-d", "--bundle", e.bundle, id)
	pid := e.initPid(id)

	e.mustRuntime("update", "--memory", "256m", "--memory-swap", "-1", "--cpu-quota", "30000", "--cpu-period", "100000",
		"--cpu-share", "256", "--pids-limit", "77", "--cpuset-cpus", "0", "--blkio-weight", "300", id)
	got := liveCgroupFiles(t, pid)
	want := map[string]string{"memory": "268435456", "cpu": "30000", "shares": "256", "pids": "77", "cpus": "0"}
	if pureV2() {
		want["cpu"], want["shares"] = "30000 100000", "10" // weight = 1 + (256-2)*9999/262142
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("after update: %s = %q, want %q", k, got[k], v)
		}
	}
	// Weights: BFQ takes 300 as is; cgroup2 io.weight gets 1 + (300-10)*9999/990.
	if w, ok := got["weight"]; ok && w != "300" && w != "default 300" && w != "default 2930" {
		t.Errorf("after update: blkio weight %q, want 300 (or 2930 in io.weight)", w)
	}
	res, _ := savedResources(t, e, id)
	if res.Memory == nil || *res.Memory.Limit != 256<<20 || *res.Pids.Limit != 77 || res.CPU == nil ||
		*res.CPU.Quota != 30000 || *res.CPU.Shares != 256 || res.CPU.Cpus != "0" || *res.BlockIO.Weight != 300 {
		b, _ := json.Marshal(res)
		t.Errorf("saved resources not updated: %s", b)
	}

	// JSON on stdin and from a file.
	if out, err := e.runtimeStdin(`{"pids":{"limit":55},"memory":{"limit":201326592}}`, "update", "--resources", "-", id); err != nil {
		t.Fatalf("update --resources -: %v %s", err, out)
	}
	if got := liveCgroupFiles(t, pid); got["pids"] != "55" || got["memory"] != "201326592" {
		t.Errorf("after --resources -: pids %q memory %q", got["pids"], got["memory"])
	}
	file := filepath.Join(t.TempDir(), "res.json")
	os.WriteFile(file, []byte(`{"pids":{"limit":66}}`), 0o644)
	e.mustRuntime("update", "-r", file, id)
	if got := liveCgroupFiles(t, pid); got["pids"] != "66" {
		t.Errorf("after --resources FILE: pids %q", got["pids"])
	}
	if res, _ := savedResources(t, e, id); *res.Pids.Limit != 66 || *res.Memory.Limit != 201326592 || res.CPU.Cpus != "0" {
		t.Errorf("saved after JSON updates: pids %d memory %d cpus %q", *res.Pids.Limit, *res.Memory.Limit, res.CPU.Cpus)
	}

	// The whole object with zeros, as Docker sends it, changes nothing.
	before0 := liveCgroupFiles(t, pid)
	zeros := `{"memory":{"limit":0,"reservation":0,"swap":0},"cpu":{"shares":0,"quota":0,"period":0,"realtimeRuntime":0,"realtimePeriod":0,"cpus":"","mems":""},"pids":{"limit":0},"blockIO":{"weight":0}}`
	if out, err := e.runtimeStdin(zeros, "update", "-r", "-", id); err != nil {
		t.Errorf("update with zeros: %v %s", err, out)
	}
	if after := liveCgroupFiles(t, pid); !mapsEqual(before0, after) {
		t.Errorf("update with zeros changed the cgroup:\n%v\n%v", before0, after)
	}

	// Swap alone: applied against the saved memory limit (192 MiB).
	e.mustRuntime("update", "--memory-swap", "300m", id)
	if pureV2() {
		mem := containerCgroup(t, pid, "memory")
		if _, err := os.Stat(filepath.Join(mem, "memory.swap.max")); err == nil {
			if got := readTrim(t, filepath.Join(mem, "memory.swap.max")); got != strconv.Itoa((300-192)<<20) {
				t.Errorf("memory.swap.max %s, want %d", got, (300-192)<<20)
			}
		}
	} else if got := liveCgroupFiles(t, pid)["swap"]; got != strconv.Itoa(300<<20) {
		t.Errorf("memory.memsw.limit_in_bytes %s, want %d", got, 300<<20)
	}

	// Bad input: a clear error naming what is wrong, nothing changed.
	before := liveCgroupFiles(t, pid)
	_, stateBefore := savedResources(t, e, id)
	type badUpdate struct {
		args  []string
		stdin string
		want  string
	}
	cases := []badUpdate{
		{[]string{"--memory", "-5"}, "", "--memory"},
		{[]string{"--memory", "lots"}, "", "--memory"},
		{[]string{"--pids-limit", "12", "--cpu-quota", "-7"}, "", "--cpu-quota"},
		{[]string{"--pids-limit", "-3"}, "", "--pids-limit"},
		{[]string{"--pids-limit", "12", "--cpuset-cpus", "0-999"}, "", "--cpuset-cpus"},
		{[]string{"--pids-limit", "12", "--cpuset-cpus", "zero"}, "", "--cpuset-cpus"},
		{[]string{"--blkio-weight", "5"}, "", "--blkio-weight"},
		{[]string{"--cpu-share", "x"}, "", "--cpu-share"},
		{[]string{"--l3-cache-schema", "L3:0=f"}, "", "l3-cache-schema"},
		{[]string{"--resources", "-"}, `{"pids":{"limit":12},"cpu":{"cpus":"0-999"}}`, "cpus"},
		{[]string{"--resources", "-"}, `{"pids":{"limit":12},"memory":{"limit":-9}}`, "memory.limit"},
		{[]string{"--resources", "-"}, `{"pids":`, "--resources"},
		{[]string{"--resources", "-"}, `{"pids":{"limit":12},"memory":{"limit":4096,"checkBeforeUpdate":true}}`, "current usage"},
		{[]string{"--resources", "/nonexistent/res.json"}, "", "--resources"},
	}
	if !pureV2() {
		// Valid to cove-runc, refused by the kernel after the memory limit
		// was written: the memory limit must be put back.
		cases = append(cases, badUpdate{[]string{"--memory", "100m", "--cpu-rt-runtime", "2000000"}, "", "cpu.rt_runtime_us"})
	}
	for _, c := range cases {
		out, err := e.runtimeStdin(c.stdin, append(append([]string{"update"}, c.args...), id)...)
		if err == nil || !strings.Contains(out, c.want) {
			t.Errorf("update %v: %v %q, want an error naming %s", c.args, err, out, c.want)
		}
	}
	if after := liveCgroupFiles(t, pid); !mapsEqual(before, after) {
		t.Errorf("cgroup changed by refused updates:\n%v\n%v", before, after)
	}
	if _, stateAfter := savedResources(t, e, id); !bytes.Equal(stateBefore, stateAfter) {
		t.Errorf("state.json changed by refused updates")
	}

	e.mustRuntime("kill", id, "KILL")
	for i := 0; i < 100 && alive(pid); i++ {
		time.Sleep(20 * time.Millisecond)
	}
	if out, err := e.runtime("update", "--pids-limit", "9", id); err == nil || !strings.Contains(out, "stopped") {
		t.Errorf("update of a stopped container: %v %q", err, out)
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// statsEvent is the part of runc's stats event the tests check.
type statsEvent struct {
	Type string `json:"type"`
	ID   string `json:"id"`
	Data struct {
		CPU struct {
			Usage struct {
				Total  uint64   `json:"total"`
				Percpu []uint64 `json:"percpu"`
			} `json:"usage"`
		} `json:"cpu"`
		Memory struct {
			Usage struct {
				Usage uint64 `json:"usage"`
				Limit uint64 `json:"limit"`
			} `json:"usage"`
			Raw map[string]uint64 `json:"raw"`
		} `json:"memory"`
		Pids struct {
			Current uint64 `json:"current"`
			Limit   uint64 `json:"limit"`
		} `json:"pids"`
	} `json:"data"`
}

func TestLiveEventsStats(t *testing.T) {
	e := newEnv(t, sh(`i=0; while [ $i -lt 3000 ]; do i=$((i+1)); done; sleep 1000`), func(s *specs.Spec) {
		s.Linux.Resources = &specs.LinuxResources{
			Memory: &specs.LinuxMemory{Limit: ptr(int64(96 << 20))},
			Pids:   &specs.LinuxPids{Limit: ptr(int64(30))},
		}
	})
	id := "live-stats"
	e.mustRuntime("run", "-d", "--bundle", e.bundle, id)
	execPid(t, e, id)
	out := e.mustRuntime("events", "--stats", id)
	var ev statsEvent
	if err := json.Unmarshal([]byte(out), &ev); err != nil {
		t.Fatalf("events --stats: %v: %q", err, out)
	}
	d := ev.Data
	if ev.Type != "stats" || ev.ID != id {
		t.Errorf("event type %q id %q", ev.Type, ev.ID)
	}
	if d.Memory.Usage.Usage == 0 || d.Memory.Usage.Limit != 96<<20 || len(d.Memory.Raw) == 0 {
		t.Errorf("memory usage %d limit %d raw %d keys", d.Memory.Usage.Usage, d.Memory.Usage.Limit, len(d.Memory.Raw))
	}
	if d.Pids.Current < 2 || d.Pids.Limit != 30 {
		t.Errorf("pids current %d limit %d, want >= 2 and 30", d.Pids.Current, d.Pids.Limit)
	}
	if d.CPU.Usage.Total == 0 {
		t.Errorf("cpu usage total 0")
	}
	// runc's field names, as containerd's shim decodes them.
	for _, key := range []string{`"cpu":{"usage":{`, `"throttling":`, `"cpuset":{`, `"memory":{`, `"kernel":`, `"pids":{"current":`, `"blkio":`, `"hugetlb":`} {
		if !strings.Contains(out, key) {
			t.Errorf("stats JSON lacks %s", key)
		}
	}
	if out, err := e.runtime("events", "--stats", "live-none"); err == nil {
		t.Errorf("events of a missing container succeeded: %q", out)
	}
}

func TestLiveEventsOOM(t *testing.T) {
	// dd fills a tmpfs charged to a 24 MiB cgroup and is OOM-killed; the
	// shell (the init) lives on.
	e := newEnv(t, sh(`sleep 1; dd if=/dev/zero of=/dev/shm/fill bs=1M count=64 2>/dev/null; rm -f /dev/shm/fill; sleep 1000`), func(s *specs.Spec) {
		s.Linux.Resources = &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr(int64(24 << 20)), Swap: ptr(int64(24 << 20))}}
		for i := range s.Mounts {
			if s.Mounts[i].Destination == "/dev/shm" {
				s.Mounts[i].Options = append(s.Mounts[i].Options, "size=128m")
			}
		}
	})
	id := "live-oom"
	e.mustRuntime("create", "--bundle", e.bundle, id)
	outFile := filepath.Join(t.TempDir(), "events")
	f, err := os.Create(outFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	e.mustRuntime("start", id)
	ev := exec.Command(runtimeBin, "--root", e.root, "events", "--interval", "300ms", id)
	ev.Stdout, ev.Stderr = f, f
	if err := ev.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- ev.Wait() }()
	t.Cleanup(func() { ev.Process.Kill() })

	var text string
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		b, _ := os.ReadFile(outFile)
		if text = string(b); strings.Contains(text, `"type":"oom"`) && strings.Contains(text, `"type":"stats"`) {
			break
		}
	}
	if !strings.Contains(text, `{"type":"oom","id":"`+id+`"}`) {
		t.Fatalf("no oom event in the stream:\n%s", text)
	}
	if !strings.Contains(text, `"type":"stats"`) {
		t.Errorf("no stats event in the stream:\n%s", text)
	}
	// The stream ends when the container exits.
	e.mustRuntime("kill", id, "KILL")
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("events exit: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Errorf("events still running 10 s after the container was killed")
	}
}

func TestLiveFeatures(t *testing.T) {
	needRoot(t)
	out, err := exec.Command(runtimeBin, "features").Output()
	if err != nil {
		t.Fatal(err)
	}
	var f features.Features
	dec := json.NewDecoder(bytes.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		t.Fatalf("features JSON: %v\n%s", err, out)
	}
	if f.OCIVersionMax != specs.Version || f.OCIVersionMin != "1.0.0" {
		t.Errorf("oci versions %q-%q", f.OCIVersionMin, f.OCIVersionMax)
	}
	for _, o := range []string{"rro", "rbind", "ro", "nosuid", "rnosuid", "rprivate"} {
		if !slices.Contains(f.MountOptions, o) {
			t.Errorf("mountOptions lacks %s", o)
		}
	}
	if slices.Contains(f.MountOptions, "idmap") {
		t.Errorf("mountOptions claims idmap, which rootfs refuses")
	}
	l := f.Linux
	if l == nil || l.Cgroup == nil || l.Seccomp == nil || l.MountExtensions == nil {
		t.Fatalf("linux features incomplete:\n%s", out)
	}
	if len(l.Namespaces) != 8 || !slices.Contains(l.Namespaces, "time") || !slices.Contains(l.Namespaces, "cgroup") {
		t.Errorf("namespaces %v", l.Namespaces)
	}
	if !slices.Contains(l.Capabilities, "CAP_SYS_ADMIN") || !slices.Contains(l.Capabilities, "CAP_CHECKPOINT_RESTORE") {
		t.Errorf("capabilities %v", l.Capabilities)
	}
	if !*l.Cgroup.V1 || !*l.Cgroup.V2 || *l.Cgroup.Systemd {
		t.Errorf("cgroup %+v", *l.Cgroup)
	}
	if !slices.Contains(l.Seccomp.Archs, "SCMP_ARCH_X86_64") || !slices.Contains(l.Seccomp.Actions, "SCMP_ACT_ERRNO") ||
		!slices.Contains(l.Seccomp.Operators, "SCMP_CMP_MASKED_EQ") {
		t.Errorf("seccomp %+v", *l.Seccomp)
	}
	if *l.MountExtensions.IDMap.Enabled || *l.Apparmor.Enabled || *l.Selinux.Enabled {
		t.Errorf("idmap, apparmor or selinux claimed")
	}
	// The claims hold: a bind mount with each listed option is accepted,
	// and an rro one is read-only.
	src := t.TempDir()
	n := 0
	e := newEnv(t, sh(`grep -c " /m/" /proc/self/mountinfo; touch /m/rro/x 2>/dev/null && echo writable || echo readonly`), func(s *specs.Spec) {
		for _, o := range f.MountOptions {
			if o != "bind" && o != "rbind" {
				s.Mounts = append(s.Mounts, specs.Mount{Destination: "/m/" + o, Type: "bind", Source: src, Options: []string{"rbind", o}})
				n++
			}
		}
	})
	if out := strings.Fields(e.mustRun("live-features")); strings.Join(out, " ") != strconv.Itoa(n)+" readonly" {
		t.Errorf("%d bind mounts, one per mount option, and an rro one: got %q", n, out)
	}
}
