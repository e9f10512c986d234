package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"cove/internal/engine/container"
	"cove/internal/engine/volume"
	"cove/internal/pathrs"
)

// Volumes opens the volume store (<root>/volumes).
func (e *Engine) Volumes() (*volume.Store, error) {
	return volume.Open(filepath.Join(e.cfg.Root, "volumes"))
}

// prepareVolumes resolves the container's mounts: --volumes-from copied
// from the other containers, named volumes created when missing,
// anonymous ones created, bind sources checked (and created for -v); each
// volume is acquired for container id. On failure nothing stays acquired
// or created.
func (e *Engine) prepareVolumes(id string, o *RunOptions) (err error) {
	if len(o.VolumeFlags)+len(o.MountFlags)+len(o.VolumesFrom) == 0 {
		return nil
	}
	own, err := o.parseVolumeFlags()
	if err != nil {
		return err
	}
	var ms []volume.MountSpec
	for _, vf := range o.VolumesFrom {
		name, mode, _ := strings.Cut(vf, ":")
		if mode != "" && mode != "ro" && mode != "rw" {
			return fmt.Errorf("--volumes-from %s: want CONTAINER[:ro|rw]", vf)
		}
		other, err := e.Containers.Lookup(name)
		if err != nil {
			return fmt.Errorf("--volumes-from %s: %w", vf, err)
		}
		oo, err := Options(other.Options)
		if err != nil {
			return fmt.Errorf("--volumes-from %s: %w", vf, err)
		}
		for _, m := range oo.VolumeMounts {
			if m.Type == volume.TypeTmpfs {
				continue
			}
			switch mode {
			case "ro":
				m.ReadOnly = true
			case "rw":
				m.ReadOnly = false
			}
			m.CreateSource = false
			ms = append(ms, m)
		}
	}
	// The container's own flags win over --volumes-from at one target.
	for _, m := range own {
		ms = replaceTarget(ms, m)
	}
	seen := map[string]bool{}
	for _, m := range own {
		if seen[m.Target] {
			return fmt.Errorf("duplicate mount point %s", m.Target)
		}
		seen[m.Target] = true
	}
	vols, err := e.Volumes()
	if err != nil {
		return err
	}
	var created, acquired []string
	defer func() {
		if err == nil {
			return
		}
		for _, n := range acquired {
			vols.Release(n, id)
		}
		for _, n := range created {
			vols.Remove(n, true)
		}
	}()
	for i := range ms {
		m := &ms[i]
		switch m.Type {
		case volume.TypeBind:
			f, err := volume.OpenBindSource(m.Source, m.CreateSource)
			if err != nil {
				return fmt.Errorf("bind mount %s: %w", m.Target, err)
			}
			f.Close()
		case volume.TypeVolume:
			isNew := m.Source == ""
			if !isNew {
				_, err := vols.Inspect(m.Source)
				if err != nil && !errors.Is(err, volume.ErrNotFound) {
					return err
				}
				isNew = err != nil
			}
			v, err := vols.Create(m.Source, volume.CreateOptions{Labels: m.VolumeLabels, Options: m.VolumeOptions})
			if err != nil {
				return fmt.Errorf("volume for %s: %w", m.Target, err)
			}
			if isNew {
				created = append(created, v.Name)
			}
			m.Source = v.Name
			if err := vols.Acquire(v.Name, id); err != nil {
				return err
			}
			acquired = append(acquired, v.Name)
		}
	}
	o.VolumeMounts = ms
	return nil
}

func replaceTarget(ms []volume.MountSpec, m volume.MountSpec) []volume.MountSpec {
	for i := range ms {
		if ms[i].Target == m.Target {
			ms[i] = m
			return ms
		}
	}
	return append(ms, m)
}

// releaseVolumes drops container id from its volumes' users and, with
// anonymous, removes its anonymous volumes (rm -v, --rm).
func (e *Engine) releaseVolumes(id string, o *RunOptions, anonymous bool) error {
	if o == nil || len(o.VolumeMounts) == 0 {
		return nil
	}
	vols, err := e.Volumes()
	if err != nil {
		return err
	}
	var errs []error
	for _, m := range o.VolumeMounts {
		if m.Type != volume.TypeVolume {
			continue
		}
		if err := vols.Release(m.Source, id); err != nil {
			errs = append(errs, err)
			continue
		}
		if !anonymous {
			continue
		}
		if v, err := vols.Inspect(m.Source); err == nil && v.Anonymous {
			if err := vols.Remove(m.Source, false); err != nil && !errors.Is(err, volume.ErrInUse) {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// RemoveAnonymousVolumes removes the anonymous volumes of a removed
// container (rm -v); o is its options, read before the removal.
func (e *Engine) RemoveAnonymousVolumes(id string, o *RunOptions) error {
	return e.releaseVolumes(id, o, true)
}

// volumeMounts turns the container's resolved mounts into OCI mounts,
// copying the image's content at the target into each empty volume first
// (rootfs is the mounted container root).
func (e *Engine) volumeMounts(ctx context.Context, r *container.Record, o *RunOptions, rootfs string) ([]specs.Mount, error) {
	if len(o.VolumeMounts) == 0 {
		return nil, nil
	}
	vols, err := e.Volumes()
	if err != nil {
		return nil, err
	}
	var out []specs.Mount
	for _, m := range o.VolumeMounts {
		opts := []string{"rbind"}
		if m.NonRecursive {
			opts = []string{"bind"}
		}
		if m.ReadOnly {
			opts = append(opts, "ro")
		} else {
			opts = append(opts, "rw")
		}
		switch m.Type {
		case volume.TypeTmpfs:
			to := []string{"nosuid", "nodev"}
			if m.ReadOnly {
				to = append(to, "ro")
			}
			if m.TmpfsSize > 0 {
				to = append(to, "size="+strconv.FormatInt(m.TmpfsSize, 10))
			}
			mode := uint64(m.TmpfsMode) & 0o7777 // raw octal bits, as parsed
			if mode == 0 {
				mode = 0o1777
			}
			to = append(to, "mode="+strconv.FormatUint(mode, 8))
			out = append(out, specs.Mount{Destination: m.Target, Type: "tmpfs", Source: "tmpfs", Options: to})
			continue
		case volume.TypeBind:
			// Resolve the source once, here, to its real path.
			f, err := volume.OpenBindSource(m.Source, false)
			if err != nil {
				return nil, fmt.Errorf("bind mount %s: %w", m.Target, err)
			}
			real, err := os.Readlink(pathrs.ProcfdPath(f))
			f.Close()
			if err != nil {
				return nil, fmt.Errorf("bind mount %s: %w", m.Target, err)
			}
			prop := m.Propagation
			if prop == "" {
				prop = "rprivate"
			}
			out = append(out, specs.Mount{Destination: m.Target, Type: "bind", Source: real, Options: append(opts, prop)})
		case volume.TypeVolume:
			if !m.NoCopy {
				if _, err := vols.CopyUp(ctx, m.Source, rootfs, m.Target); err != nil {
					return nil, err
				}
			}
			p, err := vols.Path(m.Source)
			if err != nil {
				return nil, fmt.Errorf("volume %s for %s: %w", m.Source, m.Target, err)
			}
			out = append(out, specs.Mount{Destination: m.Target, Type: "bind", Source: p, Options: append(opts, "rprivate")})
		}
	}
	return out, nil
}

// checkVolumeClaims finds volume claims of containers that are gone (a
// crash between a claim and the container's record, or between the
// record's removal and the release: the volume would refuse removal
// forever) and, with repair, drops them. A claim made in the last minute
// may belong to a create in progress and is left alone.
func (e *Engine) checkVolumeClaims(rep *CheckReport, known map[string]*container.Record, repair bool) {
	if _, err := os.Stat(filepath.Join(e.cfg.Root, "volumes")); err != nil {
		return
	}
	vols, err := e.Volumes()
	if err != nil {
		rep.add("volumes: %v", err)
		return
	}
	list, err := vols.List()
	if err != nil {
		rep.add("volumes: %v", err)
		return
	}
	for _, v := range list {
		st, err := os.Stat(filepath.Join(vols.Dir(), v.Name, "volume.json"))
		if err != nil || time.Since(st.ModTime()) < time.Minute {
			continue
		}
		for _, id := range v.UsedBy {
			if known[id] != nil {
				continue
			}
			if _, err := os.Stat(e.Containers.Path(id)); err == nil {
				continue // a record being written or removed
			}
			rep.add("volume %s claimed by a container that is gone: %s", v.Name, id)
			if repair {
				if err := vols.Release(v.Name, id); err != nil {
					rep.add("release volume %s: %v", v.Name, err)
				}
			}
		}
	}
}

// MountPoint is one entry of `inspect`'s Mounts, in docker's names.
type MountPoint struct {
	Type        string `json:"Type"`
	Name        string `json:"Name,omitempty"`
	Source      string `json:"Source"`
	Destination string `json:"Destination"`
	Driver      string `json:"Driver,omitempty"`
	Mode        string `json:"Mode"`
	RW          bool   `json:"RW"`
	Propagation string `json:"Propagation"`
}

// MountPoints lists the container's volume, bind and tmpfs mounts.
func (e *Engine) MountPoints(o *RunOptions) []MountPoint {
	if len(o.VolumeMounts) == 0 {
		return []MountPoint{}
	}
	vols, _ := e.Volumes()
	var out []MountPoint
	for _, m := range o.VolumeMounts {
		mp := MountPoint{Type: m.Type, Destination: m.Target, RW: !m.ReadOnly, Propagation: m.Propagation}
		if m.ReadOnly {
			mp.Mode = "ro"
		}
		switch m.Type {
		case volume.TypeVolume:
			mp.Name, mp.Driver = m.Source, volume.DriverLocal
			if mp.Mode == "" {
				mp.Mode = "z"
			}
			if vols != nil {
				if v, err := vols.Inspect(m.Source); err == nil {
					mp.Source = v.Mountpoint
				}
			}
		case volume.TypeBind:
			mp.Source = m.Source
			if mp.Propagation == "" {
				mp.Propagation = "rprivate"
			}
		}
		out = append(out, mp)
	}
	return out
}
