package image

import (
	"context"
	"fmt"
	"sort"
	"time"

	"cove/internal/engine/content"
)

// GCOptions tunes GC.
type GCOptions struct {
	// IngestAge: partial downloads idle for longer are deleted (0: keep
	// them for a resume unless All).
	IngestAge time.Duration
	// All deletes every idle partial download.
	All bool
}

// GCReport says what GC removed.
type GCReport struct {
	Records   []string // image names whose manifest or config was missing
	Blobs     []string
	Snapshots []string
	Ingests   []content.IngestInfo
	Bytes     int64 // blob bytes freed
}

// GC removes blobs and snapshots that no image references, image records
// whose manifest or config blob is gone (a crash or a damaged store), and
// stale partial downloads. It waits for running pulls and loads to finish
// (they hold the GC lock shared) and blocks new ones while it runs.
func (s *Store) GC(ctx context.Context, opts GCOptions) (GCReport, error) {
	var rep GCReport
	unlock, err := s.lockGC(true)
	if err != nil {
		return rep, err
	}
	defer unlock()

	recs, err := s.meta.list()
	if err != nil {
		return rep, err
	}
	blobs := map[string]bool{}
	chains := map[string]bool{}
	var broken []string
	for _, r := range recs {
		img, err := s.load(r)
		if err != nil {
			broken = append(broken, r.Name)
			continue
		}
		blobs[r.Digest], blobs[img.Manifest.Config.Digest.String()] = true, true
		if r.Index != "" {
			blobs[r.Index] = true
		}
		for _, l := range img.Manifest.Layers {
			blobs[l.Digest.String()] = true
		}
		for _, c := range img.ChainIDs {
			chains[c] = true
		}
	}
	if len(broken) > 0 {
		if err := s.meta.del(broken...); err != nil {
			return rep, err
		}
		rep.Records = broken
	}
	if err := ctx.Err(); err != nil {
		return rep, err
	}
	var dead []string
	err = s.content.Walk(func(d string, size int64) error {
		if !blobs[d] {
			dead = append(dead, d)
			rep.Bytes += size
		}
		return nil
	})
	if err != nil {
		return rep, err
	}
	for _, d := range dead {
		if err := s.content.Delete(d); err != nil {
			return rep, err
		}
		rep.Blobs = append(rep.Blobs, d)
	}
	age := opts.IngestAge
	if age == 0 && !opts.All {
		age = 24 * time.Hour
	}
	if rep.Ingests, err = s.content.CleanIngest(age); err != nil {
		return rep, err
	}
	if s.snapshots != nil {
		removed, err := s.gcSnapshots(chains)
		rep.Snapshots = removed
		if err != nil {
			return rep, err
		}
	}
	return rep, nil
}

// gcSnapshots removes committed snapshots outside keep, children before
// parents; snapshots still used by containers (ErrInUse) stay.
func (s *Store) gcSnapshots(keep map[string]bool) ([]string, error) {
	parent, err := s.snapshots.Parents()
	if err != nil {
		return nil, fmt.Errorf("list snapshots: %w", err)
	}
	depth := map[string]int{}
	var depthOf func(c string, n int) int
	depthOf = func(c string, n int) int {
		if d, ok := depth[c]; ok {
			return d
		}
		p, ok := parent[c]
		if !ok || p == "" || n > 1000 {
			depth[c] = 0
			return 0
		}
		depth[c] = depthOf(p, n+1) + 1
		return depth[c]
	}
	var dead []string
	for c := range parent {
		if !keep[c] {
			depthOf(c, 0)
			dead = append(dead, c)
		}
	}
	sort.Slice(dead, func(i, j int) bool { return depth[dead[i]] > depth[dead[j]] })
	var removed []string
	for _, c := range dead {
		// A snapshot a container (or a child kept for another image) uses
		// fails to go: it stays until the next collection.
		if err := s.snapshots.Remove(c); err == nil {
			removed = append(removed, c)
		}
	}
	return removed, nil
}
