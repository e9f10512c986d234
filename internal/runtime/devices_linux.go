package runtime

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// defaultDeviceRules are allowed after the spec's own rules: creating any
// node (opening stays denied), the standard devices and ptys.
var defaultDeviceRules = []specs.LinuxDeviceCgroup{
	{Allow: true, Type: "c", Access: "m"},
	{Allow: true, Type: "b", Access: "m"},
	charDev(1, 3), // null
	charDev(1, 5), // zero
	charDev(1, 7), // full
	charDev(1, 8), // random
	charDev(1, 9), // urandom
	charDev(5, 0), // tty
	charDev(5, 1), // console
	charDev(5, 2), // ptmx
	{Allow: true, Type: "c", Major: i64(136), Access: "rwm"}, // pts
}

func i64(v int64) *int64 { return &v }

func charDev(major, minor int64) specs.LinuxDeviceCgroup {
	return specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: i64(major), Minor: i64(minor), Access: "rwm"}
}

// effectiveResources returns the spec's resources with the device rules the
// container needs to use its own /dev: the defaults and every node the spec
// asked to create. Without spec device rules nothing is added: the cgroup
// keeps what its parent allows.
func effectiveResources(s *specs.Spec) *specs.LinuxResources {
	r := s.Linux.Resources
	if r == nil || len(r.Devices) == 0 {
		return r
	}
	out := *r
	out.Devices = append(append([]specs.LinuxDeviceCgroup{}, r.Devices...), defaultDeviceRules...)
	for _, d := range s.Linux.Devices {
		typ := d.Type
		switch typ {
		case "p": // FIFOs are not devices: the device cgroup has no say.
			continue
		case "u": // unbuffered character device
			typ = "c"
		}
		out.Devices = append(out.Devices, specs.LinuxDeviceCgroup{
			Allow: true, Type: typ, Major: i64(d.Major), Minor: i64(d.Minor), Access: "rwm",
		})
	}
	return &out
}
