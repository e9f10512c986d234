// Package cgroups manages one container's control group on cgroup v1, v2 and
// the hybrid layout (v1 controllers plus a controller-less cgroup2 mount).
package cgroups

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Manager controls one container's cgroup in every hierarchy of the host.
type Manager interface {
	// Create makes the cgroup directories; it is idempotent.
	Create() error
	// Apply moves pid into the cgroup in every hierarchy.
	Apply(pid int) error
	// Set writes the resource limits r.
	Set(r *specs.LinuxResources) error
	// Pids lists the processes in the cgroup.
	Pids() ([]int, error)
	// Kill sends SIGKILL to every process in the cgroup and waits until it is empty.
	Kill() error
	// Destroy removes the cgroup directories. It kills remaining processes first.
	Destroy() error
	// Paths maps each hierarchy ("memory", "cpu", ..., "unified") to its directory.
	Paths() map[string]string
}
