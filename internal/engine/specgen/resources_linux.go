package specgen

import (
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// BlockDevice resolves a block device path (or MAJOR:MINOR, checked to
// exist in /sys/dev/block) to its numbers.
func BlockDevice(dev string) (major, minor int64, err error) {
	if a, b, ok := strings.Cut(dev, ":"); ok && !strings.HasPrefix(dev, "/") {
		ma, err1 := strconv.ParseInt(a, 10, 64)
		mi, err2 := strconv.ParseInt(b, 10, 64)
		if err1 != nil || err2 != nil || ma < 0 || mi < 0 {
			return 0, 0, fmt.Errorf("want a block device path or MAJOR:MINOR")
		}
		var st unix.Stat_t
		if err := unix.Stat("/sys/dev/block/"+dev, &st); err != nil {
			return 0, 0, fmt.Errorf("no block device %s on this machine", dev)
		}
		return ma, mi, nil
	}
	var st unix.Stat_t
	if err := unix.Stat(dev, &st); err != nil {
		return 0, 0, fmt.Errorf("unknown device: %w", err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFBLK {
		return 0, 0, fmt.Errorf("not a block device")
	}
	return int64(unix.Major(st.Rdev)), int64(unix.Minor(st.Rdev)), nil
}
