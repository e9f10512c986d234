// Package volume manages named volumes for containers, as Docker's local
// volume driver does: each volume is a directory <root>/<name>/_data with
// its metadata in <root>/<name>/volume.json (driver "local", labels,
// options, creation time, the containers using it).
//
// A volume created with the option size=<bytes> (k, m, g suffixes) is
// capped by the quota drivers of package quota (project quota, btrfs
// qgroup, or a loop-mounted ext4 image _data.img); quota=<driver> picks
// one. A volume without a name is anonymous and gets a random 64-hex name.
// ParseVolumeFlag and ParseMountFlag read the -v and --mount flags.
// On first use the engine calls CopyUp, which copies the image's content
// at the mount path into a volume that is still empty (Docker semantics).
//
// Every change takes an flock(2) on <root>/.lock, so several cove
// processes can share the directory; a volume appears by a rename from
// <root>/.tmp-*, so a crash leaves either no volume or a complete one.
package volume

import (
	"errors"
	"fmt"
	"regexp"
	"time"
)

// DriverLocal is the only volume driver.
const DriverLocal = "local"

// LabelAnonymous marks anonymous volumes, as Docker does.
const LabelAnonymous = "com.docker.volume.anonymous"

// Errors, checked with errors.Is.
var (
	ErrNotFound     = errors.New("no such volume")
	ErrExists       = errors.New("volume already exists with other options")
	ErrInUse        = errors.New("volume is in use")
	ErrInvalid      = errors.New("invalid volume")
	ErrNotSupported = errors.New("not supported by the local volume driver")
)

// Volume is a volume's metadata, as `cove volume inspect` prints it.
type Volume struct {
	Name       string            `json:"Name"`
	Driver     string            `json:"Driver"`
	Mountpoint string            `json:"Mountpoint"`
	CreatedAt  time.Time         `json:"CreatedAt"`
	Labels     map[string]string `json:"Labels"`
	Options    map[string]string `json:"Options"`
	Scope      string            `json:"Scope"`
	Anonymous  bool              `json:"Anonymous,omitempty"`
	// Quota is the size cap and the quota driver enforcing it.
	Quota *Quota `json:"Quota,omitempty"`
	// UsedBy lists the containers that use the volume (Acquire/Release).
	UsedBy []string `json:"UsedBy,omitempty"`
}

// Quota is a volume's size cap.
type Quota struct {
	Driver string `json:"Driver"`
	Size   int64  `json:"Size"`
}

// CreateOptions configure Create.
type CreateOptions struct {
	Driver  string            // "" or "local"
	Labels  map[string]string // user labels
	Options map[string]string // driver options: size, quota
}

// PruneOptions configure Prune.
type PruneOptions struct {
	// All prunes named volumes too; by default only anonymous ones go
	// (Docker 23 and later).
	All bool
	// Labels keeps only volumes carrying every one of these labels (an
	// empty value matches any value) as candidates.
	Labels map[string]string
}

// Usage is one volume's line of `cove system df -v`.
type Usage struct {
	Name     string
	Size     int64 // bytes the volume's files take
	Limit    int64 // its cap, 0 without one
	RefCount int   // containers using it
}

var nameRe = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{1,254}$`)

func checkName(name string) error {
	if !nameRe.MatchString(name) {
		return fmt.Errorf("volume name %q: must match [a-zA-Z0-9][a-zA-Z0-9_.-]+: %w", name, ErrInvalid)
	}
	return nil
}
