package specgen

import (
	"fmt"
	"os"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Device parses --device host[:container[:perms]] and looks the host node up.
func Device(s string) (specs.LinuxDevice, specs.LinuxDeviceCgroup, error) {
	parts := strings.Split(s, ":")
	host, ctr, perms := parts[0], parts[0], "rwm"
	if len(parts) > 1 && parts[1] != "" {
		if strings.HasPrefix(parts[1], "/") {
			ctr = parts[1]
		} else {
			perms = parts[1]
		}
	}
	if len(parts) > 2 {
		perms = parts[2]
	}
	if len(parts) > 3 || strings.Trim(perms, "rwm") != "" {
		return specs.LinuxDevice{}, specs.LinuxDeviceCgroup{}, fmt.Errorf("--device %s: want HOST[:CONTAINER[:rwm]]", s)
	}
	var st unix.Stat_t
	if err := unix.Stat(host, &st); err != nil {
		return specs.LinuxDevice{}, specs.LinuxDeviceCgroup{}, fmt.Errorf("--device %s: %w", s, err)
	}
	var typ string
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFCHR:
		typ = "c"
	case unix.S_IFBLK:
		typ = "b"
	default:
		return specs.LinuxDevice{}, specs.LinuxDeviceCgroup{}, fmt.Errorf("--device %s: not a device node", s)
	}
	major, minor := int64(unix.Major(st.Rdev)), int64(unix.Minor(st.Rdev))
	mode := os.FileMode(st.Mode & 0o777)
	uid, gid := st.Uid, st.Gid
	dev := specs.LinuxDevice{Path: ctr, Type: typ, Major: major, Minor: minor, FileMode: &mode, UID: &uid, GID: &gid}
	rule := specs.LinuxDeviceCgroup{Allow: true, Type: typ, Major: &major, Minor: &minor, Access: perms}
	return dev, rule, nil
}
