package runtime

import (
	"fmt"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

// maxSockPath is the longest path a unix socket address holds: sun_path
// is 108 bytes including the terminating NUL.
const maxSockPath = 107

// withSockPath calls fn with a name for the socket at path that fits a
// unix socket address: path itself when short enough, else
// /proc/self/fd/N/BASE through an O_PATH descriptor of its directory.
// State directories run past the limit under Docker's exec root, whose
// container ids are 64 hex digits.
func withSockPath(path string, fn func(name string) error) error {
	if len(path) <= maxSockPath {
		return fn(path)
	}
	dir, base := filepath.Split(path)
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", dir, err)
	}
	defer unix.Close(fd)
	name := "/proc/self/fd/" + strconv.Itoa(fd) + "/" + base
	if len(name) > maxSockPath {
		return fmt.Errorf("socket name %s: too long", base)
	}
	return fn(name)
}
