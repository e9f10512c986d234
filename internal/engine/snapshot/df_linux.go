package snapshot

import "fmt"

// DiskUsage is the snapshot store's part of `cove system df`: image
// layers and container layers.
type DiskUsage struct {
	// Snapshots counts the committed snapshots (unpacked image layers).
	Snapshots int
	// SnapshotsSize adds up the bytes of file content they unpacked.
	SnapshotsSize int64
	// Active is the usage of each writable layer by key (see Usage).
	Active map[string]Usage
}

// DiskUsage reports the committed snapshots and the usage of every active
// layer (cheap for capped layers, a tree walk for the others).
func (s *Store) DiskUsage() (DiskUsage, error) {
	du := DiskUsage{Active: map[string]Usage{}}
	infos, err := s.List()
	if err != nil {
		return du, fmt.Errorf("disk usage: %w", err)
	}
	du.Snapshots = len(infos)
	for _, i := range infos {
		du.SnapshotsSize += i.Size
	}
	actives, err := s.ListActive()
	if err != nil {
		return du, fmt.Errorf("disk usage: %w", err)
	}
	for _, a := range actives {
		u, err := s.Usage(a.Key)
		if err != nil {
			continue // removed meanwhile
		}
		du.Active[a.Key] = u
	}
	return du, nil
}
