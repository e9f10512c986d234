package main

import (
	"fmt"
	"path/filepath"

	"cove/internal/engine/image"
	"cove/internal/engine/snapshot"
)

// openImages opens the image store of --root with its snapshot store.
func openImages() (*image.Store, error) {
	snaps, err := snapshot.Open(filepath.Join(global.root, "snapshots"))
	if err != nil {
		return nil, fmt.Errorf("open snapshots in %s: %w", global.root, err)
	}
	return image.Open(global.root, snapAdapter{snaps})
}

// snapAdapter gives the image store the snapshot listing it needs for GC.
type snapAdapter struct{ *snapshot.Store }

func (a snapAdapter) Parents() (map[string]string, error) {
	infos, err := a.List()
	if err != nil {
		return nil, err
	}
	m := make(map[string]string, len(infos))
	for _, in := range infos {
		m[in.ChainID] = in.Parent
	}
	return m, nil
}
