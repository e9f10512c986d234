package image

import (
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// lockGC takes <root>/gc.lock: shared for pulls, loads and imports (which
// write blobs no image references yet), exclusive for garbage collection.
func (s *Store) lockGC(exclusive bool) (func(), error) {
	p := filepath.Join(s.root, "gc.lock")
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("gc lock: %w", err)
	}
	how := unix.LOCK_SH
	if exclusive {
		how = unix.LOCK_EX
	}
	if err := unix.Flock(int(f.Fd()), how); err != nil {
		f.Close()
		return nil, fmt.Errorf("gc lock %s: %w", p, err)
	}
	return func() { f.Close() }, nil
}
