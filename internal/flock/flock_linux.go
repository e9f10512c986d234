// Package flock takes advisory whole-file locks (flock(2)) on lock files,
// the way cove's stores serialise concurrent short-lived processes.
package flock

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// The lock modes.
const (
	Exclusive = unix.LOCK_EX
	Shared    = unix.LOCK_SH
)

// Lock opens the lock file at path (creating it, mode 0600) and waits for a
// lock of the given mode on it; the returned function releases it. A
// missing parent directory gives an error that matches unix.ENOENT.
func Lock(path string, mode int) (release func(), err error) {
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_CREAT|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock %s: %w", path, err)
	}
	for {
		err = unix.Flock(fd, mode)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() { unix.Close(fd) }, nil
}
