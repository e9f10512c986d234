package image

import (
	"fmt"
	"path/filepath"

	"cove/internal/flock"
)

// lockGC takes <root>/gc.lock: shared for pulls, loads and imports (which
// write blobs no image references yet), exclusive for garbage collection.
func (s *Store) lockGC(exclusive bool) (func(), error) {
	mode := flock.Shared
	if exclusive {
		mode = flock.Exclusive
	}
	release, err := flock.Lock(filepath.Join(s.root, "gc.lock"), mode)
	if err != nil {
		return nil, fmt.Errorf("gc lock: %w", err)
	}
	return release, nil
}
