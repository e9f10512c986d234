package engine

import (
	"fmt"

	"cove/internal/engine/volume"
)

// VolumeOptions are the -v, --mount and --volumes-from flags of a
// container and, once created, the mounts they resolved to.
type VolumeOptions struct {
	VolumeFlags []string `json:"Binds,omitempty"`       // -v
	MountFlags  []string `json:"MountFlags,omitempty"`  // --mount
	VolumesFrom []string `json:"VolumesFrom,omitempty"` // --volumes-from CONTAINER[:ro|rw]
	// VolumeMounts are the resolved mounts in flag order: anonymous
	// volumes named, --volumes-from expanded.
	VolumeMounts []volume.MountSpec `json:"VolumeMounts,omitempty"`
}

// parseVolumeFlags checks the flags without touching the store.
func (o *VolumeOptions) parseVolumeFlags() ([]volume.MountSpec, error) {
	var ms []volume.MountSpec
	for _, v := range o.VolumeFlags {
		m, err := volume.ParseVolumeFlag(v)
		if err != nil {
			return nil, fmt.Errorf("-v: %w", err)
		}
		ms = append(ms, m)
	}
	for _, v := range o.MountFlags {
		m, err := volume.ParseMountFlag(v)
		if err != nil {
			return nil, fmt.Errorf("--mount: %w", err)
		}
		ms = append(ms, m)
	}
	return ms, nil
}
