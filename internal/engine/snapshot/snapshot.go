// Package snapshot stores unpacked image layers as copy-on-write snapshots
// keyed by chain ID, and the writable layers containers run on.
//
// A committed snapshot is read-only and holds one layer applied on top of
// its parent; an active snapshot (a container's writable layer) is created
// by Prepare on top of a committed one. Three drivers share this API:
// overlay (each snapshot holds only its layer's diff, whiteouts in overlayfs
// form, a container is an overlay mount), btrfs (each snapshot is a
// read-only subvolume snapshot of its parent plus the layer) and copy (each
// snapshot is a full copy, the last resort on any filesystem).
//
// Layout under the store directory:
//
//	driver               the driver chosen when the store was created
//	lock                 flock(2) serialising commits and removals
//	snapshots/<hex>/     committed: info.json and fs/ (the layer's files)
//	active/<key>/        writable layers: info.json, fs/ (upper) and work/
//	tmp/                 unpacks and removals in progress; never used, and
//	                     removed by Open and Repair once no process holds them
//
// A snapshot becomes visible only by a rename from tmp/ into snapshots/, so
// a crash at any point leaves either no snapshot or a complete one.
//
// An image pull calls Unpack once per layer, bottom first, each on the
// previous chain ID. A container's life is Prepare(id, topChainID,
// WithLabels(...)), Mount(id, rootfs) before the runtime's create,
// Unmount(rootfs) and RemoveActive(id) after delete; Repair after a crash
// lists active layers so the engine can drop those without a container.
//
// A writable layer can be capped (WithSizeLimit, Resize): on the btrfs
// driver its subvolume gets a qgroup limit; on overlay and copy the
// layer's upper and work directories live in active/<key>/q, a directory
// capped by the best quota driver for the store's filesystem (project
// quota, btrfs subvolume with a qgroup limit, or a loop-mounted ext4 image
// q.img; see package quota). Writes past the cap fail with EDQUOT or
// ENOSPC inside the container only.
package snapshot

import (
	"errors"
	"time"

	"cove/internal/engine/quota"
)

// Errors returned by Store methods, checked with errors.Is.
var (
	// ErrNotFound: the snapshot or active layer does not exist.
	ErrNotFound = errors.New("snapshot not found")
	// ErrExists: an active layer with that key already exists.
	ErrExists = errors.New("snapshot already exists")
	// ErrInUse: a child snapshot, an active layer or a mount still uses it.
	ErrInUse = errors.New("snapshot in use")
	// ErrInvalid: a malformed chain ID or key.
	ErrInvalid = errors.New("invalid snapshot name")
	// ErrNotSupported: the driver cannot do what was asked.
	ErrNotSupported = errors.New("not supported by the snapshot driver")
	// ErrBelowUsage: Resize to less than the layer already holds.
	ErrBelowUsage = quota.ErrBelowUsage
)

// Driver names.
const (
	DriverOverlay = "overlay"
	DriverBtrfs   = "btrfs"
	DriverCopy    = "copy"
)

// Info describes a committed snapshot.
type Info struct {
	ChainID string    `json:"chainID"`
	Parent  string    `json:"parent,omitempty"`
	Size    int64     `json:"size"` // bytes of file content the layer unpacked
	Created time.Time `json:"created"`
}

// ActiveInfo describes a writable layer made by Prepare.
type ActiveInfo struct {
	Key      string            `json:"key"`
	Parent   string            `json:"parent,omitempty"` // chain ID it sits on; "" for an empty root
	ReadOnly bool              `json:"readOnly,omitempty"`
	Labels   map[string]string `json:"labels,omitempty"`
	Created  time.Time         `json:"created"`
	// Quota is the size limit of the writable layer, if it has one.
	Quota *QuotaInfo `json:"quota,omitempty"`
}

// QuotaInfo is a writable layer's size limit and the mechanism enforcing
// it (quota.Btrfs, quota.Loop or quota.Project).
type QuotaInfo struct {
	Driver string `json:"driver"`
	Size   int64  `json:"size"`
}

// Mount is one mount(2) call that assembles an active layer's root
// filesystem, in the shape of an OCI runtime-spec mount.
type Mount struct {
	Type    string   // "overlay" or "bind"
	Source  string   // "overlay" or the directory to bind
	Options []string // e.g. lowerdir=...,upperdir=...,workdir=... or rbind,rw
}

// Usage is the space an active layer's own files take.
type Usage struct {
	Size   int64 // bytes of disk blocks allocated
	Inodes int64 // files, directories and other entries
	Limit  int64 // the layer's size limit in bytes; 0 without one
}

// RepairReport says what Repair found and did.
type RepairReport struct {
	// RemovedTmp lists the leftover unpacks and removals deleted from tmp/.
	RemovedTmp []string
	// Active lists every active layer; the engine compares it with its
	// containers and calls RemoveActive for those no container owns.
	Active []ActiveInfo
	// Orphans lists active layers that cannot be used: their parent
	// snapshot is missing or their metadata is unreadable.
	Orphans []string
	// DetachedLoops lists loop devices of removed layers that were still
	// attached (a crash during removal) and have been detached.
	DetachedLoops []string
}
