// Package rootfs builds a container's root filesystem inside a new mount
// namespace: spec mounts, /dev, pivot_root, masked and read-only paths.
package rootfs
