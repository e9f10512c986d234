package specgen

import (
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// MinMemory is the smallest --memory accepted, as docker's (6 MB).
const MinMemory = 6 << 20

// Resources are the resource-limit flags of run, create and update, named
// as docker's HostConfig names them (so `cove inspect` shows them where
// docker users look). Zero means "not set" except where noted.
type Resources struct {
	Memory            int64 `json:"Memory"`            // --memory, bytes
	MemoryReservation int64 `json:"MemoryReservation"` // --memory-reservation (soft limit)
	MemorySwap        int64 `json:"MemorySwap"`        // --memory-swap: memory+swap; -1 unlimited
	OomKillDisable    bool  `json:"OomKillDisable"`
	OomScoreAdj       int   `json:"OomScoreAdj"`
	NanoCpus          int64 `json:"NanoCpus"` // --cpus * 1e9
	CPUShares         int64 `json:"CpuShares"`
	CPUQuota          int64 `json:"CpuQuota"`  // µs per period; -1 unlimited
	CPUPeriod         int64 `json:"CpuPeriod"` // µs
	CpusetCpus        string
	CpusetMems        string
	PidsLimit         int64 `json:"PidsLimit"` // -1 unlimited
	BlkioWeight       uint16
	// Throttles by device (a block device path or MAJOR:MINOR).
	BlkioDeviceReadBps   []ThrottleDevice `json:"BlkioDeviceReadBps"`
	BlkioDeviceWriteBps  []ThrottleDevice `json:"BlkioDeviceWriteBps"`
	BlkioDeviceReadIOps  []ThrottleDevice `json:"BlkioDeviceReadIOps"`
	BlkioDeviceWriteIOps []ThrottleDevice `json:"BlkioDeviceWriteIOps"`
}

// ThrottleDevice is one --device-{read,write}-{bps,iops} entry.
type ThrottleDevice struct {
	Path string `json:"Path"`
	Rate uint64 `json:"Rate"`
}

// throttles pairs each throttle list with its flag name.
func (r *Resources) throttles() []struct {
	flag string
	list []ThrottleDevice
} {
	return []struct {
		flag string
		list []ThrottleDevice
	}{
		{"--device-read-bps", r.BlkioDeviceReadBps}, {"--device-write-bps", r.BlkioDeviceWriteBps},
		{"--device-read-iops", r.BlkioDeviceReadIOps}, {"--device-write-iops", r.BlkioDeviceWriteIOps},
	}
}

// Check validates the limits against docker's rules and this machine
// (online CPUs and memory nodes, existing block devices). Errors name the
// flag.
func (r *Resources) Check() error {
	if r.Memory < 0 {
		return fmt.Errorf("--memory %s: must not be negative", sz(r.Memory))
	}
	if r.Memory > 0 && r.Memory < MinMemory {
		return fmt.Errorf("--memory %s: minimum memory limit allowed is 6MB", sz(r.Memory))
	}
	if r.MemoryReservation < 0 {
		return fmt.Errorf("--memory-reservation %s: must not be negative", sz(r.MemoryReservation))
	}
	if r.Memory > 0 && r.MemoryReservation > r.Memory {
		return fmt.Errorf("--memory-reservation %s: must not be above --memory %s", sz(r.MemoryReservation), sz(r.Memory))
	}
	if r.MemorySwap < -1 {
		return fmt.Errorf("--memory-swap %s: want -1 (unlimited) or a size", sz(r.MemorySwap))
	}
	if r.MemorySwap > 0 {
		if r.Memory == 0 {
			return fmt.Errorf("--memory-swap: set --memory too (memory-swap is memory plus swap)")
		}
		if r.MemorySwap < r.Memory {
			return fmt.Errorf("--memory-swap %s: must be at least --memory %s (it is memory plus swap)", sz(r.MemorySwap), sz(r.Memory))
		}
	}
	if r.OomScoreAdj < -1000 || r.OomScoreAdj > 1000 {
		return fmt.Errorf("--oom-score-adj %d: want -1000..1000", r.OomScoreAdj)
	}
	if r.NanoCpus < 0 {
		return fmt.Errorf("--cpus: must not be negative")
	}
	if r.NanoCpus > 0 {
		n := int64(onlineCPUs())
		if r.NanoCpus < 1e7 || r.NanoCpus > n*1e9 {
			return fmt.Errorf("--cpus %.2f: range is 0.01 to %d.00, as there are only %d CPUs available",
				float64(r.NanoCpus)/1e9, n, n)
		}
		if r.CPUQuota != 0 || r.CPUPeriod != 0 {
			return fmt.Errorf("--cpus cannot be combined with --cpu-quota or --cpu-period")
		}
	}
	if r.CPUShares < 0 {
		return fmt.Errorf("--cpu-shares %d: must not be negative", r.CPUShares)
	}
	if r.CPUShares > 262144 {
		return fmt.Errorf("--cpu-shares %d: maximum is 262144", r.CPUShares)
	}
	if r.CPUPeriod != 0 && (r.CPUPeriod < 1000 || r.CPUPeriod > 1000000) {
		return fmt.Errorf("--cpu-period %d: want 1000 (1ms) to 1000000 (1s)", r.CPUPeriod)
	}
	if r.CPUQuota != 0 && r.CPUQuota != -1 && r.CPUQuota < 1000 {
		return fmt.Errorf("--cpu-quota %d: want -1 or at least 1000 (1ms)", r.CPUQuota)
	}
	if err := checkSet("--cpuset-cpus", r.CpusetCpus, cpusetFile("cpus", "/sys/devices/system/cpu/online")); err != nil {
		return err
	}
	if err := checkSet("--cpuset-mems", r.CpusetMems, cpusetFile("mems", "/sys/devices/system/node/online")); err != nil {
		return err
	}
	if r.PidsLimit < -1 {
		return fmt.Errorf("--pids-limit %d: want -1 (unlimited) or a positive count", r.PidsLimit)
	}
	if r.BlkioWeight != 0 && (r.BlkioWeight < 10 || r.BlkioWeight > 1000) {
		return fmt.Errorf("--blkio-weight %d: want 10 to 1000", r.BlkioWeight)
	}
	for _, t := range r.throttles() {
		for _, d := range t.list {
			if _, _, err := BlockDevice(d.Path); err != nil {
				return fmt.Errorf("%s %s: %w", t.flag, d.Path, err)
			}
		}
	}
	return nil
}

// Linux is the OCI form of the limits (device throttles resolved to
// MAJOR:MINOR). Unset limits stay nil, so an update leaves them alone.
func (r *Resources) Linux() (*specs.LinuxResources, error) {
	lr := &specs.LinuxResources{}
	mem := &specs.LinuxMemory{}
	if r.Memory > 0 {
		mem.Limit = i64(r.Memory)
		switch {
		case r.MemorySwap != 0:
			mem.Swap = i64(r.MemorySwap)
		case swapAccounting():
			// docker's default: as much swap as memory.
			mem.Swap = i64(2 * r.Memory)
		}
	} else if r.MemorySwap == -1 {
		mem.Swap = i64(-1)
	}
	if r.MemoryReservation > 0 {
		mem.Reservation = i64(r.MemoryReservation)
	}
	if r.OomKillDisable {
		t := true
		mem.DisableOOMKiller = &t
	}
	if *mem != (specs.LinuxMemory{}) {
		lr.Memory = mem
	}
	cpu := &specs.LinuxCPU{Cpus: r.CpusetCpus, Mems: r.CpusetMems}
	if r.CPUShares > 0 {
		cpu.Shares = u64(uint64(r.CPUShares))
	}
	if r.NanoCpus > 0 {
		cpu.Period = u64(100000)
		cpu.Quota = i64(r.NanoCpus / 1e4) // (cpus) * 100000 µs
	}
	if r.CPUPeriod > 0 {
		cpu.Period = u64(uint64(r.CPUPeriod))
	}
	if r.CPUQuota != 0 {
		cpu.Quota = i64(r.CPUQuota)
	}
	if *cpu != (specs.LinuxCPU{}) {
		lr.CPU = cpu
	}
	if r.PidsLimit != 0 {
		lr.Pids = &specs.LinuxPids{Limit: i64(r.PidsLimit)}
	}
	blk := &specs.LinuxBlockIO{}
	if r.BlkioWeight > 0 {
		w := r.BlkioWeight
		blk.Weight = &w
	}
	for i, t := range r.throttles() {
		for _, d := range t.list {
			major, minor, err := BlockDevice(d.Path)
			if err != nil {
				return nil, fmt.Errorf("%s %s: %w", t.flag, d.Path, err)
			}
			td := specs.LinuxThrottleDevice{Rate: d.Rate}
			td.Major, td.Minor = major, minor
			switch i {
			case 0:
				blk.ThrottleReadBpsDevice = append(blk.ThrottleReadBpsDevice, td)
			case 1:
				blk.ThrottleWriteBpsDevice = append(blk.ThrottleWriteBpsDevice, td)
			case 2:
				blk.ThrottleReadIOPSDevice = append(blk.ThrottleReadIOPSDevice, td)
			case 3:
				blk.ThrottleWriteIOPSDevice = append(blk.ThrottleWriteIOPSDevice, td)
			}
		}
	}
	if blk.Weight != nil || len(blk.ThrottleReadBpsDevice)+len(blk.ThrottleWriteBpsDevice)+
		len(blk.ThrottleReadIOPSDevice)+len(blk.ThrottleWriteIOPSDevice) > 0 {
		lr.BlockIO = blk
	}
	return lr, nil
}

// ApplyTo puts the limits into s (linux.resources, keeping its device
// rules, and process.oomScoreAdj).
func (r *Resources) ApplyTo(s *specs.Spec) error {
	lr, err := r.Linux()
	if err != nil {
		return err
	}
	if s.Linux.Resources == nil {
		s.Linux.Resources = &specs.LinuxResources{}
	}
	res := s.Linux.Resources
	res.Memory, res.CPU, res.Pids, res.BlockIO = lr.Memory, lr.CPU, lr.Pids, lr.BlockIO
	if r.OomScoreAdj != 0 && s.Process != nil {
		v := r.OomScoreAdj
		s.Process.OOMScoreAdj = &v
	}
	return nil
}

// sz prints a byte count the way it was likely given (64m, 512k).
func sz(n int64) string {
	for _, u := range []struct {
		suffix string
		n      int64
	}{{"g", 1 << 30}, {"m", 1 << 20}, {"k", 1 << 10}} {
		if n != 0 && n%u.n == 0 {
			return strconv.FormatInt(n/u.n, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10)
}

func i64(v int64) *int64   { return &v }
func u64(v uint64) *uint64 { return &v }

// swapAccounting reports whether memory+swap limits can be set here.
func swapAccounting() bool {
	for _, p := range []string{"/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes", "/sys/fs/cgroup/memory.swap.max"} {
		if _, err := os.Stat(p); err == nil {
			return true
		}
	}
	// cgroup v2: the root has no memory.swap.max, and its
	// cgroup.subtree_control lists memory only once a first container has
	// enabled it, so look at what the root offers (kernels with the memory
	// controller on v2 account swap unless booted with swapaccount=0).
	b, err := os.ReadFile("/sys/fs/cgroup/cgroup.controllers")
	return err == nil && slices.Contains(strings.Fields(string(b)), "memory")
}

// cpusetFile reads the root cpuset's cpus or mems (v1, then v2), falling
// back to the sysfs list of online ones.
func cpusetFile(kind, fallback string) string {
	for _, p := range []string{"/sys/fs/cgroup/cpuset/cpuset." + kind, "/sys/fs/cgroup/cpuset." + kind + ".effective", fallback} {
		if b, err := os.ReadFile(p); err == nil && strings.TrimSpace(string(b)) != "" {
			return strings.TrimSpace(string(b))
		}
	}
	if kind == "mems" {
		return "0"
	}
	return ""
}

func onlineCPUs() int {
	set, err := ParseSet(cpusetFile("cpus", "/sys/devices/system/cpu/online"))
	if err != nil || len(set) == 0 {
		return 1
	}
	return len(set)
}

// checkSet checks a cpuset list against the available one.
func checkSet(flag, want, avail string) error {
	if want == "" {
		return nil
	}
	w, err := ParseSet(want)
	if err != nil {
		return fmt.Errorf("%s %s: %w", flag, want, err)
	}
	if avail == "" {
		return nil
	}
	a, err := ParseSet(avail)
	if err != nil {
		return nil
	}
	for n := range w {
		if !a[n] {
			return fmt.Errorf("%s %s: not available on this machine (available: %s)", flag, want, avail)
		}
	}
	return nil
}

// ParseSet parses a cpuset list such as 0-2,4.
func ParseSet(s string) (map[int]bool, error) {
	out := map[int]bool{}
	for _, part := range strings.Split(strings.TrimSpace(s), ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil || a < 0 {
			return nil, fmt.Errorf("bad list element %q (want N or N-M, comma separated)", part)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				return nil, fmt.Errorf("bad range %q", part)
			}
		}
		if b-a > 4096 {
			return nil, fmt.Errorf("range %q too large", part)
		}
		for n := a; n <= b; n++ {
			out[n] = true
		}
	}
	return out, nil
}

// ParseThrottle parses DEVICE:RATE, DEVICE being a path or MAJOR:MINOR;
// rate parses RATE (a size for bps, a count for iops).
func ParseThrottle(flag, s string, rate func(string) (uint64, error)) (ThrottleDevice, error) {
	i := strings.LastIndex(s, ":")
	if i <= 0 || i == len(s)-1 {
		return ThrottleDevice{}, fmt.Errorf("%s %s: want DEVICE:RATE", flag, s)
	}
	r, err := rate(s[i+1:])
	if err != nil {
		return ThrottleDevice{}, fmt.Errorf("%s %s: %w", flag, s, err)
	}
	if r > math.MaxInt64 {
		return ThrottleDevice{}, fmt.Errorf("%s %s: rate too large", flag, s)
	}
	return ThrottleDevice{Path: s[:i], Rate: r}, nil
}
