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
	// Freeze stops every process and waits until the cgroup is frozen.
	Freeze() error
	// Thaw resumes a frozen cgroup.
	Thaw() error
	// Frozen reports whether the cgroup is frozen.
	Frozen() (bool, error)
	// Update writes r to a live cgroup; when a write fails, the old values
	// are put back. Device rules in r are ignored.
	Update(r *specs.LinuxResources) error
	// Stats reads the cgroup's resource usage.
	Stats() (*Stats, error)
	// OOMEvents sends one value per out-of-memory event until stop is
	// closed or the cgroup is removed, then closes the channel.
	OOMEvents(stop <-chan struct{}) (<-chan struct{}, error)
}

// Mode is the cgroup layout of a host.
type Mode int

const (
	// Legacy is cgroup v1 only.
	Legacy Mode = iota
	// Hybrid is cgroup v1 controllers plus a cgroup2 mount (usually without controllers).
	Hybrid
	// Unified is pure cgroup v2.
	Unified
)

// String returns "v1", "hybrid" or "v2".
func (m Mode) String() string {
	switch m {
	case Legacy:
		return "v1"
	case Hybrid:
		return "hybrid"
	case Unified:
		return "v2"
	}
	return "unknown"
}

// UnifiedKey is the Paths key of the container's directory in the cgroup2
// hierarchy, on pure v2 and hybrid hosts alike.
const UnifiedKey = "unified"
