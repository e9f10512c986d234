package volume

import (
	"fmt"
	"os"
	"path"
	"strconv"
	"strings"

	"cove/internal/engine/quota"
)

// Mount types of a MountSpec.
const (
	TypeVolume = "volume"
	TypeBind   = "bind"
	TypeTmpfs  = "tmpfs"
)

// MountSpec is one `-v` or `--mount` flag, parsed and checked.
type MountSpec struct {
	Type   string // TypeVolume, TypeBind or TypeTmpfs
	Source string // volume name ("" for an anonymous volume) or absolute host path
	Target string // absolute path in the container, cleaned
	// ReadOnly mounts it read-only.
	ReadOnly bool
	// Propagation is rprivate (default), private, rshared, shared, rslave
	// or slave.
	Propagation string
	// NonRecursive binds without submounts (--mount bind-nonrecursive).
	NonRecursive bool
	// NoCopy skips copy-up of the image's content into an empty volume.
	NoCopy bool
	// Relabel is "z" or "Z" (SELinux relabelling: accepted, and a no-op
	// without SELinux).
	Relabel string
	// CreateSource: a missing bind source is created (`-v`, not --mount).
	CreateSource bool
	// VolumeLabels and VolumeOptions create a missing volume
	// (--mount volume-label=, volume-opt=).
	VolumeLabels  map[string]string
	VolumeOptions map[string]string
	// TmpfsSize (bytes, 0 for the kernel default) and TmpfsMode (0 for
	// 1777) of a tmpfs mount.
	TmpfsSize int64
	TmpfsMode os.FileMode
}

// ParseVolumeFlag parses docker's -v/--volume syntax:
// [SOURCE:]TARGET[:OPTIONS]. A SOURCE starting with "/" is a bind mount
// (created when missing), any other SOURCE names a volume, and no SOURCE
// means an anonymous volume. OPTIONS is a comma list of ro, rw, z, Z,
// nocopy, the propagation modes, and consistent/cached/delegated (ignored).
func ParseVolumeFlag(s string) (MountSpec, error) {
	parts := strings.Split(s, ":")
	var src, dst, opts string
	switch len(parts) {
	case 1:
		dst = parts[0]
	case 2:
		src, dst = parts[0], parts[1]
	case 3:
		src, dst, opts = parts[0], parts[1], parts[2]
	default:
		return MountSpec{}, fmt.Errorf("volume %q: want [SOURCE:]TARGET[:OPTIONS]: %w", s, ErrInvalid)
	}
	m := MountSpec{Type: TypeVolume, Source: src}
	if strings.HasPrefix(src, "/") {
		m.Type, m.CreateSource, m.Source = TypeBind, true, path.Clean(src)
	} else if src != "" {
		if err := checkName(src); err != nil {
			return MountSpec{}, fmt.Errorf("volume %q: %w", s, err)
		}
	} else if len(parts) > 1 {
		return MountSpec{}, fmt.Errorf("volume %q: empty source: %w", s, ErrInvalid)
	}
	var err error
	if m.Target, err = cleanTarget(dst); err != nil {
		return MountSpec{}, fmt.Errorf("volume %q: %w", s, err)
	}
	if opts == "" {
		return m, nil
	}
	rw := false
	for _, o := range strings.Split(opts, ",") {
		switch o {
		case "ro":
			m.ReadOnly = true
		case "rw":
			rw = true
		case "z", "Z":
			m.Relabel = o
		case "nocopy":
			m.NoCopy = true
		case "shared", "rshared", "slave", "rslave", "private", "rprivate":
			if m.Propagation != "" {
				return MountSpec{}, fmt.Errorf("volume %q: two propagation modes: %w", s, ErrInvalid)
			}
			m.Propagation = o
		case "consistent", "cached", "delegated":
		default:
			return MountSpec{}, fmt.Errorf("volume %q: unknown option %q: %w", s, o, ErrInvalid)
		}
	}
	if m.ReadOnly && rw {
		return MountSpec{}, fmt.Errorf("volume %q: both ro and rw: %w", s, ErrInvalid)
	}
	if m.Type == TypeVolume && m.Propagation != "" {
		return MountSpec{}, fmt.Errorf("volume %q: propagation applies to bind mounts only: %w", s, ErrInvalid)
	}
	if m.Type == TypeBind && m.NoCopy {
		return MountSpec{}, fmt.Errorf("volume %q: nocopy applies to volumes only: %w", s, ErrInvalid)
	}
	return m, nil
}

// ParseMountFlag parses docker's --mount syntax, a comma list of key=value:
// type (volume (default), bind, tmpfs), source|src, target|destination|dst,
// readonly|ro[=bool], bind-propagation, bind-nonrecursive[=bool],
// volume-nocopy[=bool], volume-label=K=V, volume-opt=K=V,
// volume-driver=local, tmpfs-size, tmpfs-mode (octal), consistency.
func ParseMountFlag(s string) (MountSpec, error) {
	m := MountSpec{Type: TypeVolume}
	bad := func(format string, a ...any) (MountSpec, error) {
		return MountSpec{}, fmt.Errorf("mount %q: %s: %w", s, fmt.Sprintf(format, a...), ErrInvalid)
	}
	var dst string
	seen := map[string]bool{}
	for _, f := range strings.Split(s, ",") {
		k, v, hasV := strings.Cut(f, "=")
		k = strings.ToLower(strings.TrimSpace(k))
		boolVal := func() (bool, error) {
			if !hasV {
				return true, nil
			}
			return strconv.ParseBool(v)
		}
		switch k {
		case "type":
			m.Type = v
		case "source", "src":
			m.Source = v
		case "target", "destination", "dst":
			dst = v
		case "readonly", "ro":
			b, err := boolVal()
			if err != nil {
				return bad("readonly=%s", v)
			}
			m.ReadOnly = b
		case "bind-propagation":
			switch v {
			case "shared", "rshared", "slave", "rslave", "private", "rprivate":
				m.Propagation = v
			default:
				return bad("bind-propagation=%s", v)
			}
		case "bind-nonrecursive":
			b, err := boolVal()
			if err != nil {
				return bad("bind-nonrecursive=%s", v)
			}
			m.NonRecursive = b
		case "volume-nocopy":
			b, err := boolVal()
			if err != nil {
				return bad("volume-nocopy=%s", v)
			}
			m.NoCopy = b
		case "volume-label", "volume-opt":
			lk, lv, _ := strings.Cut(v, "=")
			if lk == "" {
				return bad("%s without a key", k)
			}
			mp := &m.VolumeLabels
			if k == "volume-opt" {
				mp = &m.VolumeOptions
			}
			if *mp == nil {
				*mp = map[string]string{}
			}
			(*mp)[lk] = lv
		case "volume-driver":
			if v != DriverLocal {
				return MountSpec{}, fmt.Errorf("mount %q: volume driver %q: %w", s, v, ErrNotSupported)
			}
		case "tmpfs-size":
			n, err := quota.ParseSize(v)
			if err != nil {
				return bad("tmpfs-size=%s", v)
			}
			m.TmpfsSize = n
		case "tmpfs-mode":
			n, err := strconv.ParseUint(v, 8, 32)
			if err != nil || n > 0o7777 {
				return bad("tmpfs-mode=%s", v)
			}
			m.TmpfsMode = os.FileMode(n)
		case "consistency":
		default:
			return bad("unknown key %q", k)
		}
		if seen[k] && k != "volume-label" && k != "volume-opt" {
			return bad("%s given twice", k)
		}
		seen[k] = true
	}
	var err error
	if m.Target, err = cleanTarget(dst); err != nil {
		return MountSpec{}, fmt.Errorf("mount %q: %w", s, err)
	}
	volumeOnly := m.NoCopy || m.VolumeLabels != nil || m.VolumeOptions != nil
	switch m.Type {
	case TypeVolume:
		if m.Source != "" {
			if err := checkName(m.Source); err != nil {
				return MountSpec{}, fmt.Errorf("mount %q: %w", s, err)
			}
		}
		if m.Propagation != "" || m.NonRecursive {
			return bad("bind options on a volume")
		}
	case TypeBind:
		if !strings.HasPrefix(m.Source, "/") {
			return bad("a bind mount needs an absolute source")
		}
		m.Source = path.Clean(m.Source)
		if volumeOnly {
			return bad("volume options on a bind mount")
		}
	case TypeTmpfs:
		if m.Source != "" {
			return bad("a tmpfs mount takes no source")
		}
		if volumeOnly || m.Propagation != "" || m.NonRecursive {
			return bad("volume or bind options on a tmpfs mount")
		}
	default:
		return bad("type %q (volume, bind or tmpfs)", m.Type)
	}
	if m.Type != TypeTmpfs && (m.TmpfsSize != 0 || m.TmpfsMode != 0) {
		return bad("tmpfs options on a %s mount", m.Type)
	}
	return m, nil
}

func cleanTarget(t string) (string, error) {
	if !strings.HasPrefix(t, "/") {
		return "", fmt.Errorf("target %q: not an absolute path: %w", t, ErrInvalid)
	}
	c := path.Clean(t)
	if c == "/" {
		return "", fmt.Errorf("target %q: cannot be the root: %w", t, ErrInvalid)
	}
	return c, nil
}
