package cgroups

import (
	"bufio"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// TestMain doubles as a helper process: COVE_CGROUPS_HELPER selects a job
// that runs after one line arrives on stdin (once the test moved it into a cgroup).
func TestMain(m *testing.M) {
	if h := os.Getenv("COVE_CGROUPS_HELPER"); h != "" {
		bufio.NewReader(os.Stdin).ReadString('\n')
		os.Exit(helper(h))
	}
	os.Exit(m.Run())
}

func helper(name string) int {
	switch name {
	case "alloc": // touch 100 MiB
		b := make([]byte, 100<<20)
		for i := 0; i < len(b); i += 4096 {
			b[i] = 1
		}
		return 0
	case "devices": // /dev/null rw and /dev/zero w allowed, /dev/zero r denied
		for _, c := range []struct {
			path string
			flag int
			want error
		}{{"/dev/null", os.O_RDWR, nil}, {"/dev/zero", os.O_WRONLY, nil}, {"/dev/zero", os.O_RDONLY, unix.EPERM}} {
			f, err := os.OpenFile(c.path, c.flag, 0)
			if f != nil {
				f.Close()
			}
			if !errors.Is(err, c.want) && err != c.want {
				fmt.Fprintf(os.Stderr, "open %s flags %#x: %v, want %v\n", c.path, c.flag, err, c.want)
				return 3
			}
		}
		return 0
	}
	return 2
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
}

func hostLayout(t *testing.T) *layout {
	t.Helper()
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	l, err := parseMountinfo(f)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestHostMode checks detection; in the v2 VM lane COVE_EXPECT_CGROUP=v2
// proves the v2 code paths are the ones being tested.
func TestHostMode(t *testing.T) {
	l := hostLayout(t)
	t.Logf("cgroup mode %v", l.mode)
	if want := os.Getenv("COVE_EXPECT_CGROUP"); want != "" && l.mode.String() != want {
		t.Fatalf("cgroup mode %v, COVE_EXPECT_CGROUP=%s", l.mode, want)
	}
}

// newTestManager creates a cgroup "/cove-test-<random>[/ctr]" and removes it,
// its parent and any helper processes when the test ends.
func newTestManager(t *testing.T, nested bool) *manager {
	t.Helper()
	requireRoot(t)
	base := fmt.Sprintf("/cove-test-%d-%x", os.Getpid(), rand.Uint32())
	p := base
	if nested {
		p += "/ctr"
	}
	mg, err := New(p, "")
	if err != nil {
		t.Fatal(err)
	}
	m := mg.(*manager)
	t.Cleanup(func() {
		if err := m.Destroy(); err != nil {
			t.Errorf("destroy: %v", err)
		}
		for _, d := range m.dirs() {
			if _, err := os.Stat(d); err == nil {
				t.Errorf("%s still exists after Destroy", d)
			}
			if nested {
				_ = rmdir(filepath.Dir(d))
			}
		}
	})
	if err := m.Create(); err != nil {
		t.Fatal(err)
	}
	return m
}

// startInCgroup starts a process, moves it into m and returns it with the
// pipe that releases a helper.
func startInCgroup(t *testing.T, m *manager, cmd *exec.Cmd) *os.File {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdin = r
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r.Close()
	t.Cleanup(func() {
		w.Close()
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	if err := m.Apply(cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	return w
}

func helperCmd(name string) *exec.Cmd {
	cmd := exec.Command("/proc/self/exe", "-test.run=^$")
	cmd.Env = append(os.Environ(), "COVE_CGROUPS_HELPER="+name)
	return cmd
}

// testBlockDevice returns a whole disk: the one backing / or else the
// first in /sys/block (the VM lane has only a brd RAM disk).
func testBlockDevice(t *testing.T) (major, minor int64) {
	var st unix.Stat_t
	dev := ""
	if err := unix.Stat("/", &st); err == nil && unix.Major(st.Dev) != 0 {
		sys := fmt.Sprintf("/sys/dev/block/%d:%d", unix.Major(st.Dev), unix.Minor(st.Dev))
		if _, err := os.Stat(sys + "/partition"); err == nil {
			sys += "/.."
		}
		if b, err := os.ReadFile(sys + "/dev"); err == nil {
			dev = strings.TrimSpace(string(b))
		}
	}
	if dev == "" {
		ents, _ := os.ReadDir("/sys/block")
		for _, e := range ents {
			if b, err := os.ReadFile("/sys/block/" + e.Name() + "/dev"); err == nil {
				dev = strings.TrimSpace(string(b))
				break
			}
		}
	}
	if _, err := fmt.Sscanf(dev, "%d:%d", &major, &minor); err != nil {
		t.Skip("no block device for io tests")
	}
	return major, minor
}

func u64(v uint64) *uint64 { return &v }
func u16(v uint16) *uint16 { return &v }
func bptr(v bool) *bool    { return &v }

type check struct {
	file, want string
	contains   bool
}

func TestSetReadBack(t *testing.T) {
	requireRoot(t)
	major, minor := testBlockDevice(t)
	dev := specs.LinuxBlockIODevice{Major: major, Minor: minor}
	devS := fmt.Sprintf("%d:%d", major, minor)
	tests := []struct {
		name   string
		ctl    [2]string // v1 and v2 controller names
		r      *specs.LinuxResources
		v1, v2 []check
	}{
		{"memory limit", [2]string{"memory", "memory"},
			&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(64 << 20), Reservation: i64(32 << 20)}},
			[]check{{"memory.limit_in_bytes", "67108864", false}, {"memory.soft_limit_in_bytes", "33554432", false}},
			[]check{{"memory.max", "67108864", false}, {"memory.low", "33554432", false}}},
		{"memory swap", [2]string{"memory", "memory"},
			&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(64 << 20), Swap: i64(128 << 20)}},
			[]check{{"memory.limit_in_bytes", "67108864", false}, {"memory.memsw.limit_in_bytes", "134217728", false}},
			[]check{{"memory.max", "67108864", false}, {"memory.swap.max", "67108864", false}}},
		{"memory unlimited", [2]string{"memory", "memory"},
			&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(-1), Swap: i64(-1), KernelTCP: i64(1 << 20)}},
			[]check{{"memory.limit_in_bytes", "9223372036854771712", false}},
			[]check{{"memory.max", "max", false}}},
		{"memory v1 extras", [2]string{"memory", "memory"},
			&specs.LinuxResources{Memory: &specs.LinuxMemory{Swappiness: u64(10), DisableOOMKiller: bptr(true)}},
			[]check{{"memory.swappiness", "10", false}, {"memory.oom_control", "oom_kill_disable 1", true}},
			nil},
		{"cpu", [2]string{"cpu", "cpu"},
			&specs.LinuxResources{CPU: &specs.LinuxCPU{Shares: u64(512), Quota: i64(50000), Period: u64(100000)}},
			[]check{{"cpu.shares", "512", false}, {"cpu.cfs_quota_us", "50000", false}, {"cpu.cfs_period_us", "100000", false}},
			[]check{{"cpu.weight", "20", false}, {"cpu.max", "50000 100000", false}}},
		{"cpu quota unlimited", [2]string{"cpu", "cpu"},
			&specs.LinuxResources{CPU: &specs.LinuxCPU{Quota: i64(-1), Period: u64(50000)}},
			[]check{{"cpu.cfs_quota_us", "-1", false}, {"cpu.cfs_period_us", "50000", false}},
			[]check{{"cpu.max", "max 50000", false}}},
		{"cpu realtime", [2]string{"cpu", "cpu"},
			&specs.LinuxResources{CPU: &specs.LinuxCPU{RealtimePeriod: u64(1000000), RealtimeRuntime: i64(0)}},
			nil, nil},
		{"cpuset", [2]string{"cpuset", "cpuset"},
			&specs.LinuxResources{CPU: &specs.LinuxCPU{Cpus: "0", Mems: "0"}},
			[]check{{"cpuset.cpus", "0", false}, {"cpuset.mems", "0", false}},
			[]check{{"cpuset.cpus", "0", false}, {"cpuset.mems", "0", false}}},
		{"pids", [2]string{"pids", "pids"},
			&specs.LinuxResources{Pids: &specs.LinuxPids{Limit: i64(42)}},
			[]check{{"pids.max", "42", false}}, []check{{"pids.max", "42", false}}},
		{"pids unlimited", [2]string{"pids", "pids"},
			&specs.LinuxResources{Pids: &specs.LinuxPids{Limit: i64(-1)}},
			[]check{{"pids.max", "max", false}}, []check{{"pids.max", "max", false}}},
		{"io throttle", [2]string{"blkio", "io"},
			&specs.LinuxResources{BlockIO: &specs.LinuxBlockIO{
				ThrottleWriteBpsDevice:  []specs.LinuxThrottleDevice{{LinuxBlockIODevice: dev, Rate: 5 << 20}},
				ThrottleReadIOPSDevice:  []specs.LinuxThrottleDevice{{LinuxBlockIODevice: dev, Rate: 1000}},
				ThrottleReadBpsDevice:   []specs.LinuxThrottleDevice{{LinuxBlockIODevice: dev, Rate: 7 << 20}},
				ThrottleWriteIOPSDevice: []specs.LinuxThrottleDevice{{LinuxBlockIODevice: dev, Rate: 300}},
			}},
			[]check{{"blkio.throttle.write_bps_device", devS + " 5242880", false}, {"blkio.throttle.read_iops_device", devS + " 1000", false},
				{"blkio.throttle.read_bps_device", devS + " 7340032", false}, {"blkio.throttle.write_iops_device", devS + " 300", false}},
			[]check{{"io.max", devS + " rbps=7340032 wbps=5242880 riops=1000 wiops=300", false}}},
		{"io weight", [2]string{"blkio", "io"},
			&specs.LinuxResources{BlockIO: &specs.LinuxBlockIO{Weight: u16(500)}},
			[]check{{"blkio.weight", "500", false}},
			[]check{{"io.weight", "default 4950", false}}},
		{"hugetlb", [2]string{"hugetlb", "hugetlb"},
			&specs.LinuxResources{HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 4 << 20}}},
			[]check{{"hugetlb.2MB.limit_in_bytes", "4194304", false}}, []check{{"hugetlb.2MB.max", "4194304", false}}},
		{"unified", [2]string{UnifiedKey, UnifiedKey},
			&specs.LinuxResources{Unified: map[string]string{"cgroup.max.descendants": "5"}},
			nil, []check{{"cgroup.max.descendants", "5", false}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newTestManager(t, false)
			dir, v2, err := m.controller(tt.ctl[0], tt.ctl[1])
			if tt.ctl[0] == UnifiedKey {
				dir, v2 = m.paths[UnifiedKey], true
				if dir == "" {
					t.Skip("no cgroup2 hierarchy")
				}
			} else if err != nil {
				t.Skipf("%v", err)
			}
			if tt.name == "hugetlb" && !exists(dir, "hugetlb.2MB.max") && !exists(dir, "hugetlb.2MB.limit_in_bytes") {
				t.Skip("no 2MB huge pages")
			}
			if tt.name == "io weight" && !exists(dir, "blkio.weight") && !exists(dir, "io.weight") {
				t.Skip("no CFQ or iocost weights on this kernel")
			}
			if err := m.Set(tt.r); err != nil {
				t.Fatalf("set: %v", err)
			}
			want := tt.v1
			if v2 {
				want = tt.v2
			}
			for _, c := range want {
				got, err := readFile(dir, c.file)
				if err != nil {
					t.Fatal(err)
				}
				if (c.contains && !strings.Contains(got, c.want)) || (!c.contains && got != c.want) {
					t.Errorf("%s = %q, want %q", c.file, got, c.want)
				}
			}
		})
	}
}

func TestSetErrors(t *testing.T) {
	m := newTestManager(t, false)
	u := m.paths[UnifiedKey]
	tests := []struct {
		name string
		r    *specs.LinuxResources
		want string // substring of the error
	}{
		{"unified bad key", &specs.LinuxResources{Unified: map[string]string{"../x": "1"}}, "invalid unified resource key"},
		{"unified missing file", &specs.LinuxResources{Unified: map[string]string{"cove.none": "1"}}, "write " + filepath.Join(u, "cove.none")},
		{"swap below limit", &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(64 << 20), Swap: i64(1 << 20)}}, "memory"},
		{"bad device type", &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Type: "z"}}}, "invalid type"},
		{"bad hugepage size", &specs.LinuxResources{HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "../2MB"}}}, "hugepage"},
	}
	if _, ok := m.paths["net_cls"]; !ok {
		tests = append(tests, struct {
			name string
			r    *specs.LinuxResources
			want string
		}{"net_cls missing", &specs.LinuxResources{Network: &specs.LinuxNetwork{ClassID: new(uint32(7))}}, "no net_cls cgroup hierarchy"})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if u == "" && strings.HasPrefix(tt.name, "unified") {
				t.Skip("no cgroup2 hierarchy")
			}
			err := m.Set(tt.r)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}
