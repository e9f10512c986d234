package main

// Resource-limit flags shared by run, create and update (docker's names).

import (
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/pflag"
	"golang.org/x/sys/unix"

	"cove/internal/engine/specgen"
)

// resourceFlags holds the raw resource flags until parse.
type resourceFlags struct {
	memory, memoryReservation, memorySwap  string
	oomKillDisable                         bool
	oomScoreAdj                            int
	cpus                                   string
	cpuShares, cpuQuota, cpuPeriod         int64
	cpusetCpus, cpusetMems                 string
	pidsLimit                              int64
	blkioWeight                            uint16
	readBps, writeBps, readIops, writeIops []string
}

func (f *resourceFlags) add(fs *pflag.FlagSet, update bool) {
	fs.StringVarP(&f.memory, "memory", "m", "", "memory limit (e.g. 64m; minimum 6m)")
	fs.StringVar(&f.memoryReservation, "memory-reservation", "", "memory soft limit")
	fs.StringVar(&f.memorySwap, "memory-swap", "", "memory plus swap limit; -1 for unlimited swap")
	if !update {
		fs.BoolVar(&f.oomKillDisable, "oom-kill-disable", false, "disable the OOM killer")
		fs.IntVar(&f.oomScoreAdj, "oom-score-adj", 0, "OOM score adjustment (-1000 to 1000)")
	}
	fs.StringVar(&f.cpus, "cpus", "", "number of CPUs (e.g. 0.5)")
	fs.Int64VarP(&f.cpuShares, "cpu-shares", "c", 0, "CPU shares (relative weight)")
	fs.Int64Var(&f.cpuQuota, "cpu-quota", 0, "CFS quota in µs per period (-1: unlimited)")
	fs.Int64Var(&f.cpuPeriod, "cpu-period", 0, "CFS period in µs")
	fs.StringVar(&f.cpusetCpus, "cpuset-cpus", "", "CPUs allowed (e.g. 0-1,3)")
	fs.StringVar(&f.cpusetMems, "cpuset-mems", "", "memory nodes allowed")
	fs.Int64Var(&f.pidsLimit, "pids-limit", 0, "maximum number of processes (-1: unlimited)")
	fs.Uint16Var(&f.blkioWeight, "blkio-weight", 0, "block I/O weight (10 to 1000)")
	if !update {
		fs.StringArrayVar(&f.readBps, "device-read-bps", nil, "limit reads from a device (DEVICE:RATE, e.g. /dev/vda:5mb)")
		fs.StringArrayVar(&f.writeBps, "device-write-bps", nil, "limit writes to a device (DEVICE:RATE)")
		fs.StringArrayVar(&f.readIops, "device-read-iops", nil, "limit read operations per second (DEVICE:N)")
		fs.StringArrayVar(&f.writeIops, "device-write-iops", nil, "limit write operations per second (DEVICE:N)")
	}
}

// parse fills r with the flags given in fs (others keep r's values, so an
// update changes only what it names).
func (f *resourceFlags) parse(fs *pflag.FlagSet, r *specgen.Resources) error {
	var err error
	mem := func(name, v string, dst *int64, allowUnlimited bool) {
		if err != nil || !fs.Changed(name) {
			return
		}
		var n int64
		if n, err = parseMemSize(v, allowUnlimited); err != nil {
			err = fmt.Errorf("--%s %s: %w", name, v, err)
			return
		}
		*dst = n
	}
	mem("memory", f.memory, &r.Memory, false)
	mem("memory-reservation", f.memoryReservation, &r.MemoryReservation, false)
	mem("memory-swap", f.memorySwap, &r.MemorySwap, true)
	if err != nil {
		return err
	}
	if fs.Changed("oom-kill-disable") {
		r.OomKillDisable = f.oomKillDisable
		if f.oomKillDisable && cgroup2Only() {
			fmt.Fprintln(os.Stderr, "WARNING: --oom-kill-disable is ignored: cgroup v2 cannot disable the OOM killer")
		}
	}
	if fs.Changed("oom-score-adj") {
		r.OomScoreAdj = f.oomScoreAdj
	}
	if fs.Changed("cpus") {
		v, perr := strconv.ParseFloat(f.cpus, 64)
		if perr != nil || v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("--cpus %s: want a non-negative number", f.cpus)
		}
		r.NanoCpus = int64(math.Round(v * 1e9))
		if !fs.Changed("cpu-quota") && !fs.Changed("cpu-period") {
			// An update from quota/period to --cpus replaces them.
			r.CPUQuota, r.CPUPeriod = 0, 0
		}
	}
	if fs.Changed("cpu-shares") {
		r.CPUShares = f.cpuShares
	}
	if fs.Changed("cpu-quota") {
		r.CPUQuota = f.cpuQuota
	}
	if fs.Changed("cpu-period") {
		r.CPUPeriod = f.cpuPeriod
	}
	if (fs.Changed("cpu-quota") || fs.Changed("cpu-period")) && !fs.Changed("cpus") {
		// An update from --cpus to quota/period replaces it.
		r.NanoCpus = 0
	}
	if fs.Changed("cpuset-cpus") {
		r.CpusetCpus = f.cpusetCpus
	}
	if fs.Changed("cpuset-mems") {
		r.CpusetMems = f.cpusetMems
	}
	if fs.Changed("pids-limit") {
		r.PidsLimit = f.pidsLimit
	}
	if fs.Changed("blkio-weight") {
		r.BlkioWeight = f.blkioWeight
	}
	bps := func(s string) (uint64, error) {
		n, err := parseMemSize(s, false)
		if err != nil || n <= 0 {
			return 0, fmt.Errorf("bad rate %q (want a positive size such as 5mb)", s)
		}
		return uint64(n), nil
	}
	iops := func(s string) (uint64, error) {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil || n == 0 {
			return 0, fmt.Errorf("bad rate %q (want a positive count)", s)
		}
		return n, nil
	}
	for _, t := range []struct {
		name string
		vals []string
		rate func(string) (uint64, error)
		dst  *[]specgen.ThrottleDevice
	}{
		{"device-read-bps", f.readBps, bps, &r.BlkioDeviceReadBps},
		{"device-write-bps", f.writeBps, bps, &r.BlkioDeviceWriteBps},
		{"device-read-iops", f.readIops, iops, &r.BlkioDeviceReadIOps},
		{"device-write-iops", f.writeIops, iops, &r.BlkioDeviceWriteIOps},
	} {
		if !fs.Changed(t.name) {
			continue
		}
		var list []specgen.ThrottleDevice
		for _, v := range t.vals {
			td, err := specgen.ParseThrottle("--"+t.name, v, t.rate)
			if err != nil {
				return err
			}
			list = append(list, td)
		}
		*t.dst = list
	}
	return nil
}

// parseMemSize parses docker sizes: 512, 64k, 64m, 1g, 1t (b suffix
// optional, binary units); -1 where unlimited is allowed.
func parseMemSize(s string, allowUnlimited bool) (int64, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	if s == "-1" {
		if allowUnlimited {
			return -1, nil
		}
		return 0, fmt.Errorf("must not be negative")
	}
	if strings.HasPrefix(s, "-") {
		return 0, fmt.Errorf("must not be negative")
	}
	num := strings.TrimRight(s, "kmgtb")
	unit := strings.TrimSuffix(s[len(num):], "b")
	mult := map[string]float64{"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}[unit]
	if mult == 0 || (len(s[len(num):]) > 2) {
		return 0, fmt.Errorf("bad size (want e.g. 64m, 1g)")
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || v < 0 || v*mult > math.MaxInt64 {
		return 0, fmt.Errorf("bad size (want e.g. 64m, 1g)")
	}
	return int64(v * mult), nil
}

// cgroup2Only reports whether the host has the cgroup v2 hierarchy alone.
func cgroup2Only() bool {
	var st unix.Statfs_t
	return unix.Statfs("/sys/fs/cgroup", &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC
}
