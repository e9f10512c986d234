package engine

import (
	"errors"
	"fmt"

	"cove/internal/engine/container"
	"cove/internal/engine/snapshot"
)

// snapshotOptions are the Prepare options --storage-opt asks for.
func (o *StorageOptions) snapshotOptions() ([]snapshot.PrepareOption, error) {
	size, err := o.StorageSize()
	if err != nil || size == 0 {
		return nil, err
	}
	return []snapshot.PrepareOption{snapshot.WithSizeLimit(size)}, nil
}

// storageError names the flag in a snapshot's size-limit error.
func storageError(o *StorageOptions, err error) error {
	if errors.Is(err, snapshot.ErrNotSupported) || errors.Is(err, snapshot.ErrInvalid) || errors.Is(err, snapshot.ErrBelowUsage) {
		return &ExitError{Code: 125, Err: fmt.Errorf("--storage-opt size=%s: %w", o.StorageOpt["size"], err)}
	}
	return err
}

// resizeStorage applies a changed --storage-opt size= to the container's
// writable layer (snapshot.Resize: a size below the usage is refused; a
// loop-capped layer in use may only grow where root has CAP_SYS_RESOURCE).
func (e *Engine) resizeStorage(r *container.Record, old, o *StorageOptions) error {
	was, err := old.StorageSize()
	if err != nil {
		return err
	}
	size, err := o.StorageSize()
	if err != nil || size == was {
		return err
	}
	if size == 0 {
		return fmt.Errorf("--storage-opt: a size limit cannot be removed")
	}
	snaps, err := e.Snapshots()
	if err != nil {
		return err
	}
	if err := snaps.Resize(r.ID, size); err != nil {
		return storageError(o, err)
	}
	return nil
}

// LayerUsage is the disk use of a container's writable layer.
func (e *Engine) LayerUsage(r *container.Record) (snapshot.Usage, error) {
	snaps, err := e.Snapshots()
	if err != nil {
		return snapshot.Usage{}, err
	}
	return snaps.Usage(r.ID)
}

// ContainerSize is `inspect --size`: the writable layer's usage and cap,
// and that plus the image's unpacked layers.
type ContainerSize struct {
	SizeRw     int64
	SizeRootFs int64
	Limit      int64 // 0: no --storage-opt size
}

// Size measures container r's disk use (a tree walk for a layer without
// a cap, the quota's own count for a capped one).
func (e *Engine) Size(r *container.Record) (ContainerSize, error) {
	snaps, err := e.Snapshots()
	if err != nil {
		return ContainerSize{}, err
	}
	u, err := snaps.Usage(r.ID)
	if err != nil {
		return ContainerSize{}, err
	}
	cs := ContainerSize{SizeRw: u.Size, SizeRootFs: u.Size, Limit: u.Limit}
	for c := r.ChainID; c != ""; {
		in, err := snaps.Stat(c)
		if err != nil {
			break
		}
		cs.SizeRootFs += in.Size
		c = in.Parent
	}
	return cs, nil
}
