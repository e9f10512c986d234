package engine

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"cove/internal/engine/container"
	"cove/internal/engine/quota"
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
	// A loop-capped layer grows offline without CAP_SYS_RESOURCE; its
	// unmount does not fail while the container's overlay still holds the
	// filesystem, so the engine refuses a layer in use itself rather than
	// letting e2fsck and resize2fs run under a live filesystem.
	if a, err := snaps.Active(r.ID); err == nil && a.Quota != nil && a.Quota.Driver == quota.Loop &&
		!capSysResource() && e.layerInUse(r) {
		return &ExitError{Code: 125, Err: fmt.Errorf("--storage-opt size=%s: growing a loop-capped layer in use needs CAP_SYS_RESOURCE (online ext4 resize), which cove lacks here; stop container %s first", o.StorageOpt["size"], r.Name)}
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

// layerInUse reports whether container r's layer is mounted (running, or
// started and not yet cleaned up).
func (e *Engine) layerInUse(r *container.Record) bool {
	if e.State(r).Running {
		return true
	}
	rootfs := filepath.Join(e.RunDir(r.ID), "rootfs")
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return true
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 4 && f[4] == rootfs {
			return true
		}
	}
	return false
}

// capSysResource reports whether this process has CAP_SYS_RESOURCE (24)
// in its effective set.
func capSysResource() bool {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "CapEff:"); ok {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			return err == nil && n&(1<<24) != 0
		}
	}
	return false
}
