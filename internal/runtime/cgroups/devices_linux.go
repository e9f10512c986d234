package cgroups

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// setDevicesBPF enforces rules on a cgroup2 directory with an eBPF device
// program. The new program is attached first, then any device programs
// attached before (an older rule set) are detached, so no request slips
// through in between.
func setDevicesBPF(dir string, rules []devRule) error {
	prog, err := loadDeviceProgram(deviceProgram(rules))
	if err != nil {
		return err
	}
	defer unix.Close(prog)
	cg, err := unix.Open(dir, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", dir, err)
	}
	defer unix.Close(cg)
	old, err := attachedDevicePrograms(cg)
	if err != nil {
		return fmt.Errorf("%s: %w", dir, err)
	}
	if err := attachDeviceProgram(cg, prog, false); err != nil {
		return fmt.Errorf("%s: %w", dir, err)
	}
	var errs []error
	for _, id := range old {
		fd, err := programFdByID(id)
		if err != nil {
			if !errors.Is(err, unix.ENOENT) {
				errs = append(errs, err)
			}
			continue
		}
		if err := attachDeviceProgram(cg, fd, true); err != nil && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("%s: %w", dir, err))
		}
		unix.Close(fd)
	}
	return errors.Join(errs...)
}
