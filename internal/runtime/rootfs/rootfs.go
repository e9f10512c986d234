// Package rootfs builds a container's root filesystem inside a new mount
// namespace: spec mounts, /dev, pivot_root, masked and read-only paths.
//
// The init process calls Prepare, then Pivot, optionally MountConsole, then
// Finalize. Every mount destination is resolved inside the root with
// cove/internal/pathrs and mounted through a file descriptor, so symlinks
// and ".." in the container image cannot redirect a mount to the host.
package rootfs

import specs "github.com/opencontainers/runtime-spec/specs-go"

// Config is what the init needs to build the root filesystem.
type Config struct {
	Rootfs        string // absolute host path of the container root
	Readonly      bool   // root.readonly
	Propagation   string // linux.rootfsPropagation ("", shared, slave, private, unbindable and their r* forms)
	Mounts        []specs.Mount
	Devices       []specs.LinuxDevice
	MaskedPaths   []string
	ReadonlyPaths []string
	NoPivot       bool // MS_MOVE + chroot instead of pivot_root (runc --no-pivot)
	UserNS        bool // in a new user namespace: bind-mount device nodes from the host instead of mknod
	CgroupNS      bool // a new cgroup namespace was created (affects how "cgroup" mounts are done)
}
