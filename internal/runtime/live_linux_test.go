package runtime

import (
	"encoding/json"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func p64(v int64) *int64    { return &v }
func pu64(v uint64) *uint64 { return &v }

func TestMergeResources(t *testing.T) {
	dst := &specs.LinuxResources{
		Memory:  &specs.LinuxMemory{Limit: p64(64 << 20), Swap: p64(128 << 20)},
		CPU:     &specs.LinuxCPU{Shares: pu64(1024), Cpus: "0-1"},
		Pids:    &specs.LinuxPids{Limit: p64(10)},
		Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}},
	}
	MergeResources(dst, &specs.LinuxResources{
		Memory:  &specs.LinuxMemory{Limit: p64(-1)},
		CPU:     &specs.LinuxCPU{Shares: pu64(0), Quota: p64(50000), Mems: "0"},
		Devices: []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}},
		Unified: map[string]string{"memory.high": "1G"},
	})
	got, _ := json.Marshal(dst)
	for _, want := range []string{
		`"memory":{"limit":-1,"swap":-1}`,                              // -1 without swap: swap unlimited too
		`"shares":1024`, `"quota":50000`, `"cpus":"0-1"`, `"mems":"0"`, // zero shares leave the old value
		`"pids":{"limit":10}`,
		`"devices":[{"allow":false,"access":"rwm"}]`, // device rules are not merged
		`"unified":{"memory.high":"1G"}`,
	} {
		if !strings.Contains(string(got), want) {
			t.Errorf("merged %s\nlacks %s", got, want)
		}
	}
}

func TestZerosUnset(t *testing.T) {
	var w uint16
	r := zerosUnset(&specs.LinuxResources{
		Memory:  &specs.LinuxMemory{Reservation: p64(0), KernelTCP: p64(0)},
		CPU:     &specs.LinuxCPU{RealtimePeriod: pu64(0), RealtimeRuntime: p64(0), Idle: p64(0)},
		Pids:    &specs.LinuxPids{Limit: p64(0)},
		BlockIO: &specs.LinuxBlockIO{Weight: &w},
	})
	if r.Memory.Reservation != nil || r.Memory.KernelTCP != nil || r.CPU.RealtimePeriod != nil || r.CPU.RealtimeRuntime != nil ||
		r.Pids != nil || r.BlockIO.Weight != nil {
		b, _ := json.Marshal(r)
		t.Errorf("zeros left set: %s", b)
	}
	if r.CPU.Idle == nil {
		t.Errorf("cpu.idle 0 is a value (not idle), it must stay")
	}
}

func TestCompleteMemory(t *testing.T) {
	saved := &specs.Spec{Linux: &specs.Linux{Resources: &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: p64(100)}}}}
	r := completeMemory(&specs.LinuxResources{Memory: &specs.LinuxMemory{Swap: p64(300)}}, saved)
	if r.Memory.Limit == nil || *r.Memory.Limit != 100 {
		t.Errorf("swap alone: limit %v, want the saved 100", r.Memory.Limit)
	}
	r = completeMemory(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: p64(-1)}}, saved)
	if r.Memory.Swap == nil || *r.Memory.Swap != -1 {
		t.Errorf("limit -1: swap %v, want -1", r.Memory.Swap)
	}
}

func TestCheckResources(t *testing.T) {
	for _, c := range []struct {
		r    *specs.LinuxResources
		want string
	}{
		{&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: p64(-2)}}, "memory.limit"},
		{&specs.LinuxResources{Memory: &specs.LinuxMemory{Swappiness: pu64(101)}}, "swappiness"},
		{&specs.LinuxResources{CPU: &specs.LinuxCPU{Quota: p64(-5)}}, "cpu.quota"},
		{&specs.LinuxResources{CPU: &specs.LinuxCPU{Cpus: "0-100000"}}, "cpu.cpus"},
		{&specs.LinuxResources{CPU: &specs.LinuxCPU{Mems: "x"}}, "invalid list"},
		{&specs.LinuxResources{Pids: &specs.LinuxPids{Limit: p64(-9)}}, "pids.limit"},
	} {
		if err := CheckResources(c.r); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("CheckResources: %v, want an error naming %s", err, c.want)
		}
	}
	if err := CheckResources(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: p64(-1)}, CPU: &specs.LinuxCPU{Cpus: "0"}}); err != nil {
		t.Errorf("valid resources refused: %v", err)
	}
}
