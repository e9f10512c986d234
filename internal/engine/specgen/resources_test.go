package specgen

import (
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestResourcesLinux(t *testing.T) {
	r := Resources{Memory: 64 << 20, MemorySwap: 128 << 20, MemoryReservation: 32 << 20, NanoCpus: 1.5e9,
		CPUShares: 512, CpusetCpus: "0", PidsLimit: 50, OomKillDisable: true}
	lr, err := r.Linux()
	if err != nil {
		t.Fatal(err)
	}
	if *lr.Memory.Limit != 64<<20 || *lr.Memory.Swap != 128<<20 || *lr.Memory.Reservation != 32<<20 || !*lr.Memory.DisableOOMKiller {
		t.Errorf("memory: %+v", lr.Memory)
	}
	if *lr.CPU.Quota != 150000 || *lr.CPU.Period != 100000 || *lr.CPU.Shares != 512 || lr.CPU.Cpus != "0" {
		t.Errorf("cpu: %+v", lr.CPU)
	}
	if *lr.Pids.Limit != 50 || lr.BlockIO != nil {
		t.Errorf("pids %+v blkio %+v", lr.Pids, lr.BlockIO)
	}
	empty, _ := (&Resources{}).Linux()
	if empty.Memory != nil || empty.CPU != nil || empty.Pids != nil || empty.BlockIO != nil {
		t.Errorf("no flags gave limits: %+v", empty)
	}
	s := &specs.Spec{Process: &specs.Process{}, Linux: &specs.Linux{Resources: &specs.LinuxResources{
		Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}}}}}
	r.OomScoreAdj = -500
	if err := r.ApplyTo(s); err != nil {
		t.Fatal(err)
	}
	if len(s.Linux.Resources.Devices) != 1 || s.Linux.Resources.Memory == nil || *s.Process.OOMScoreAdj != -500 {
		t.Errorf("ApplyTo: %+v %v", s.Linux.Resources, s.Process.OOMScoreAdj)
	}
}

func TestResourcesCheck(t *testing.T) {
	for _, r := range []Resources{
		{Memory: 1 << 20}, {MemorySwap: 1 << 30}, {Memory: 64 << 20, MemorySwap: 32 << 20},
		{CPUPeriod: 10}, {CPUQuota: 5}, {NanoCpus: 1e9, CPUQuota: 50000}, {PidsLimit: -3},
		{BlkioWeight: 2000}, {OomScoreAdj: -1001}, {CpusetCpus: "1-0"}, {CpusetCpus: "100000"},
		{BlkioDeviceWriteBps: []ThrottleDevice{{Path: "/nonexistent", Rate: 1}}},
	} {
		if err := r.Check(); err == nil {
			t.Errorf("Check(%+v) passed", r)
		}
	}
	if err := (&Resources{Memory: 64 << 20, PidsLimit: -1, CPUQuota: -1, CpusetCpus: "0"}).Check(); err != nil {
		t.Errorf("valid limits refused: %v", err)
	}
}

func TestParseSet(t *testing.T) {
	s, err := ParseSet("0-2,5")
	if err != nil || len(s) != 4 || !s[5] || s[3] {
		t.Errorf("ParseSet: %v %v", s, err)
	}
	for _, bad := range []string{"", "a", "3-1", "-1", "0,,1"} {
		if _, err := ParseSet(bad); err == nil {
			t.Errorf("ParseSet(%q) passed", bad)
		}
	}
}
