package engine

import (
	"context"
	"fmt"
	"time"

	"cove/internal/engine/volume"
)

// ImageUsage is one image's line of `cove system df -v`.
type ImageUsage struct {
	ID         string
	Names      []string
	Created    time.Time
	Size       int64 // unpacked layers
	Shared     int64 // of which layers other images use too
	Containers int
}

// ContainerUsage is one container's line of `cove system df -v`.
type ContainerUsage struct {
	ID, Name, Image string
	Command         []string
	Created         time.Time
	Status          string
	Running         bool
	SizeRw          int64
	Volumes         int
}

// DiskUsage is `cove system df`: images, containers and volumes with
// the bytes they take.
type DiskUsage struct {
	Images []ImageUsage
	// ImagesSize counts each unpacked layer once.
	ImagesSize int64
	Containers []ContainerUsage
	Volumes    []volume.Usage
}

// DiskUsage measures the store (capped layers and volumes from their
// quota, the others by walking their trees).
func (e *Engine) DiskUsage(ctx context.Context) (*DiskUsage, error) {
	du := &DiskUsage{}
	imgs, err := e.Images()
	if err != nil {
		return nil, err
	}
	snaps, err := e.Snapshots()
	if err != nil {
		return nil, err
	}
	list, err := imgs.List()
	if err != nil {
		return nil, fmt.Errorf("disk usage: %w", err)
	}
	recs, err := e.Containers.List()
	if err != nil {
		return nil, fmt.Errorf("disk usage: %w", err)
	}
	users := map[string]int{}
	for _, r := range recs {
		users[r.ImageID]++
	}
	byID := map[string]*ImageUsage{}
	var order []string
	chains := map[string][]string{}
	layerUsers := map[string]map[string]bool{}
	for _, img := range list {
		if u, ok := byID[img.ID()]; ok {
			u.Names = appendNew(u.Names, img.Names...)
			continue
		}
		u := &ImageUsage{ID: img.ID(), Names: append([]string(nil), img.Names...), Containers: users[img.ID()]}
		if img.Config.Created != nil {
			u.Created = *img.Config.Created
		}
		byID[u.ID] = u
		order = append(order, u.ID)
		chains[u.ID] = img.ChainIDs
		for _, c := range img.ChainIDs {
			if layerUsers[c] == nil {
				layerUsers[c] = map[string]bool{}
			}
			layerUsers[c][u.ID] = true
		}
	}
	seen := map[string]bool{}
	for _, id := range order {
		u := byID[id]
		for _, c := range chains[id] {
			in, err := snaps.Stat(c)
			if err != nil {
				continue
			}
			if !seen[c] {
				seen[c] = true
				du.ImagesSize += in.Size
			}
			u.Size += in.Size
			if len(layerUsers[c]) > 1 {
				u.Shared += in.Size
			}
		}
		du.Images = append(du.Images, *u)
	}
	for _, r := range recs {
		st := e.State(r)
		cu := ContainerUsage{ID: r.ID, Name: r.Name, Image: r.Image, Command: r.Args, Created: r.Created,
			Status: st.Status, Running: st.Running}
		if u, err := snaps.Usage(r.ID); err == nil {
			cu.SizeRw = u.Size
		}
		if o, err := Options(r.Options); err == nil {
			for _, m := range o.VolumeMounts {
				if m.Type == volume.TypeVolume {
					cu.Volumes++
				}
			}
		}
		du.Containers = append(du.Containers, cu)
	}
	vols, err := e.Volumes()
	if err != nil {
		return nil, err
	}
	if du.Volumes, err = vols.DiskUsage(ctx); err != nil {
		return nil, err
	}
	return du, nil
}

func appendNew(list []string, more ...string) []string {
	for _, m := range more {
		found := false
		for _, l := range list {
			found = found || l == m
		}
		if !found {
			list = append(list, m)
		}
	}
	return list
}
