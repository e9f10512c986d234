package cgroups

import (
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// blkioToIOWeight converts a v1 blkio weight [10, 1000] to v2 io.weight [1, 10000].
func blkioToIOWeight(w uint16) uint64 {
	v := uint64(min(max(w, 10), 1000))
	return 1 + (v-10)*9999/990
}

func devKey(d specs.LinuxBlockIODevice) string { return fmt.Sprintf("%d:%d", d.Major, d.Minor) }

// setBlockIO writes weights and throttles: v1 blkio.* files, or v2 io.max
// and io.bfq.weight (when BFQ is active) or io.weight.
func (m *manager) setBlockIO(r *specs.LinuxResources) error {
	b := zeroWeightsUnset(r.BlockIO)
	if b == nil || (b.Weight == nil && b.LeafWeight == nil && len(b.WeightDevice) == 0 &&
		len(b.ThrottleReadBpsDevice) == 0 && len(b.ThrottleWriteBpsDevice) == 0 &&
		len(b.ThrottleReadIOPSDevice) == 0 && len(b.ThrottleWriteIOPSDevice) == 0) {
		return nil
	}
	dir, v2, err := m.controller("blkio", "io")
	if err != nil {
		return err
	}
	if v2 {
		return writeAll(dir, blockIOV2(dir, b))
	}
	return writeAll(dir, blockIOV1(dir, b))
}

// zeroWeightsUnset returns b with weights of 0 treated as not set: Docker
// writes "weight": 0 when no --blkio-weight was given, outside the valid
// range [10, 1000], and runc skips it (as it skips zero shares).
func zeroWeightsUnset(b *specs.LinuxBlockIO) *specs.LinuxBlockIO {
	if b == nil {
		return nil
	}
	c := *b
	zero := func(p *uint16) *uint16 {
		if p != nil && *p == 0 {
			return nil
		}
		return p
	}
	c.Weight, c.LeafWeight = zero(c.Weight), zero(c.LeafWeight)
	c.WeightDevice = nil
	for _, d := range b.WeightDevice {
		d.Weight, d.LeafWeight = zero(d.Weight), zero(d.LeafWeight)
		if d.Weight != nil || d.LeafWeight != nil {
			c.WeightDevice = append(c.WeightDevice, d)
		}
	}
	return &c
}

func blockIOV1(dir string, b *specs.LinuxBlockIO) []kv {
	// CFQ had blkio.weight; BFQ offers blkio.bfq.weight with the same range.
	weight := "blkio.weight"
	if !exists(dir, weight) && exists(dir, "blkio.bfq.weight") {
		weight = "blkio.bfq.weight"
	}
	weightDevice := weight + "_device"
	if weight == "blkio.bfq.weight" {
		weightDevice = weight
	}
	var w []kv
	if b.Weight != nil {
		w = append(w, kv{weight, fmt.Sprint(*b.Weight)})
	}
	if b.LeafWeight != nil {
		w = append(w, kv{"blkio.leaf_weight", fmt.Sprint(*b.LeafWeight)})
	}
	for _, d := range b.WeightDevice {
		if d.Weight != nil {
			w = append(w, kv{weightDevice, fmt.Sprintf("%s %d", devKey(d.LinuxBlockIODevice), *d.Weight)})
		}
		if d.LeafWeight != nil {
			w = append(w, kv{"blkio.leaf_weight_device", fmt.Sprintf("%s %d", devKey(d.LinuxBlockIODevice), *d.LeafWeight)})
		}
	}
	for _, t := range []struct {
		file string
		devs []specs.LinuxThrottleDevice
	}{
		{"blkio.throttle.read_bps_device", b.ThrottleReadBpsDevice},
		{"blkio.throttle.write_bps_device", b.ThrottleWriteBpsDevice},
		{"blkio.throttle.read_iops_device", b.ThrottleReadIOPSDevice},
		{"blkio.throttle.write_iops_device", b.ThrottleWriteIOPSDevice},
	} {
		for _, d := range t.devs {
			w = append(w, kv{t.file, fmt.Sprintf("%s %d", devKey(d.LinuxBlockIODevice), d.Rate)})
		}
	}
	return w
}

func blockIOV2(dir string, b *specs.LinuxBlockIO) []kv {
	bfq := exists(dir, "io.bfq.weight")
	weight := func(w uint16) string {
		if bfq {
			return fmt.Sprint(w)
		}
		return fmt.Sprint(blkioToIOWeight(w))
	}
	file := "io.weight"
	if bfq {
		file = "io.bfq.weight"
	}
	var w []kv
	if b.Weight != nil {
		v := weight(*b.Weight)
		if !bfq {
			v = "default " + v
		}
		w = append(w, kv{file, v})
	}
	for _, d := range b.WeightDevice {
		if d.Weight != nil {
			w = append(w, kv{file, devKey(d.LinuxBlockIODevice) + " " + weight(*d.Weight)})
		}
	}
	for _, t := range []struct {
		key  string
		devs []specs.LinuxThrottleDevice
	}{
		{"rbps", b.ThrottleReadBpsDevice},
		{"wbps", b.ThrottleWriteBpsDevice},
		{"riops", b.ThrottleReadIOPSDevice},
		{"wiops", b.ThrottleWriteIOPSDevice},
	} {
		for _, d := range t.devs {
			v := "max"
			if d.Rate != 0 {
				v = fmt.Sprint(d.Rate)
			}
			w = append(w, kv{"io.max", fmt.Sprintf("%s %s=%s", devKey(d.LinuxBlockIODevice), t.key, v)})
		}
	}
	return w
}
