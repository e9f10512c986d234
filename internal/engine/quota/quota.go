// Package quota caps the bytes a directory tree may hold, with whichever
// mechanism the filesystem under it supports: XFS/ext4 project quotas,
// btrfs subvolume qgroup limits, or (anywhere a loop device and
// mkfs.ext4 exist) a loop-mounted ext4 image in the style of OpenVZ's
// ploop. Writes past the cap fail inside the tree with EDQUOT or ENOSPC;
// nothing outside it is affected.
//
// A Driver turns a path that does not exist yet into a capped directory
// (Create), keeps it usable across reboots (Activate), grows or shrinks it
// (Resize), reports its usage cheaply (Usage) and removes it (Remove).
// The loop driver keeps its image beside the directory, in dir + ".img".
package quota

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Driver names, as `cove info` reports them.
const (
	// Project: XFS or ext4 project quotas (FS_IOC_FSSETXATTR project id
	// plus a quotactl(2) limit). Needs a kernel with quota support and the
	// filesystem mounted with prjquota.
	Project = "project"
	// Btrfs: the directory is a btrfs subvolume with a qgroup limit on its
	// exclusive bytes; quotas are enabled on the filesystem if needed.
	Btrfs = "btrfs-qgroup"
	// Loop: the directory is the mount point of an ext4 image file
	// attached to a loop device.
	Loop = "loop"
)

// Errors, checked with errors.Is.
var (
	// ErrNotSupported: the driver cannot work on this filesystem or kernel.
	ErrNotSupported = errors.New("quota driver not supported here")
	// ErrBelowUsage: a new size is smaller than what the tree already holds.
	ErrBelowUsage = errors.New("size below current usage")
	// ErrInvalid: a malformed size or driver name.
	ErrInvalid = errors.New("invalid quota")
)

// Usage is what a capped directory holds.
type Usage struct {
	Used   int64 // bytes charged against the limit
	Inodes int64 // files, directories and other entries (0 when unknown)
	Limit  int64 // the cap in bytes
}

// Driver caps directories with one mechanism.
type Driver interface {
	// Name is one of Project, Btrfs, Loop.
	Name() string
	// Create makes dir, which must not exist and whose parent must be on
	// the filesystem the driver was chosen for, a directory (mode 0755,
	// owned by the caller) that holds at most size bytes.
	Create(dir string, size int64) error
	// Activate makes dir usable again after a reboot (the loop driver
	// attaches and mounts its image); it does nothing when it is.
	Activate(dir string) error
	// Deactivate undoes Activate (the loop driver unmounts dir, which
	// detaches the loop device); dir's data stays.
	Deactivate(dir string) error
	// Resize changes the cap. A size below the current usage fails with
	// ErrBelowUsage; the loop driver grows only (ErrNotSupported).
	Resize(dir string, size int64) error
	// Usage reports what dir holds and its cap, without walking the tree.
	Usage(dir string) (Usage, error)
	// Remove deletes dir, its contents and what the driver keeps for it.
	// Nothing may use dir any more.
	Remove(dir string) error
}

// New returns the driver called name.
func New(name string) (Driver, error) {
	switch name {
	case Project:
		return projectDriver{}, nil
	case Btrfs:
		return btrfsDriver{}, nil
	case Loop:
		return loopDriver{}, nil
	}
	return nil, fmt.Errorf("quota driver %q: %w", name, ErrInvalid)
}

// Available lists the drivers that work for directories created in dir
// (an existing directory), best first: project quotas, btrfs qgroups,
// loop images. The first is what Best returns.
func Available(dir string) []string {
	var out []string
	if projectSupported(dir) == nil {
		out = append(out, Project)
	}
	if btrfsSupported(dir) == nil {
		out = append(out, Btrfs)
	}
	if loopSupported() == nil {
		out = append(out, Loop)
	}
	return out
}

// Best returns the best driver for directories created in dir.
func Best(dir string) (Driver, error) {
	a := Available(dir)
	if len(a) == 0 {
		return nil, fmt.Errorf("no quota driver for %s (no project quotas, not btrfs, no loop device or mkfs.ext4): %w", dir, ErrNotSupported)
	}
	return New(a[0])
}

// Check reports why driver name cannot cap directories created in dir,
// or nil when it can.
func Check(name, dir string) error {
	var err error
	switch name {
	case Project:
		err = projectSupported(dir)
	case Btrfs:
		err = btrfsSupported(dir)
	case Loop:
		err = loopSupported()
	default:
		return fmt.Errorf("quota driver %q: %w", name, ErrInvalid)
	}
	if err != nil {
		return fmt.Errorf("quota driver %s for %s: %w", name, dir, err)
	}
	return nil
}

// ParseSize parses a size as docker's --storage-opt size= takes it: a
// number of bytes with an optional unit b, k, m, g, t (powers of 1024,
// case-insensitive, with an optional trailing "b" or "ib": 10G, 10GB,
// 10GiB, 512m).
func ParseSize(s string) (int64, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	t = strings.TrimSuffix(t, "ib")
	if len(t) > 1 && strings.HasSuffix(t, "b") && strings.ContainsAny(t[len(t)-2:len(t)-1], "kmgt") {
		t = t[:len(t)-1]
	}
	mult := int64(1)
	if n := len(t); n > 0 {
		switch t[n-1] {
		case 'b':
			t = t[:n-1]
		case 'k':
			mult, t = 1<<10, t[:n-1]
		case 'm':
			mult, t = 1<<20, t[:n-1]
		case 'g':
			mult, t = 1<<30, t[:n-1]
		case 't':
			mult, t = 1<<40, t[:n-1]
		}
	}
	if t == "" {
		return 0, fmt.Errorf("size %q: %w", s, ErrInvalid)
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil || f <= 0 || f*float64(mult) >= 1<<62 {
		return 0, fmt.Errorf("size %q: %w", s, ErrInvalid)
	}
	return int64(f * float64(mult)), nil
}

// HumanSize formats n bytes with a binary unit (1.5GiB).
func HumanSize(n int64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB"}
	f := float64(n)
	i := 0
	for f >= 1024 && i < len(units)-1 {
		f /= 1024
		i++
	}
	if i == 0 {
		return strconv.FormatInt(n, 10) + "B"
	}
	return strings.TrimSuffix(strconv.FormatFloat(f, 'f', 1, 64), ".0") + units[i]
}

func checkSize(size int64) error {
	if size <= 0 {
		return fmt.Errorf("size %d: must be positive: %w", size, ErrInvalid)
	}
	return nil
}
