// Package image manages cove's images: names and tags in a bbolt database,
// manifests, configs and layers in the content store, layers unpacked into
// snapshots keyed by chain ID; pull and push against OCI distribution
// registries, docker-archive and OCI archives and layouts, rootfs import, and
// garbage collection of what no image references.
package image

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"cove/internal/engine/content"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Media types cove reads and writes.
const (
	MediaTypeOCIManifest    = "application/vnd.oci.image.manifest.v1+json"
	MediaTypeOCIIndex       = "application/vnd.oci.image.index.v1+json"
	MediaTypeOCIConfig      = "application/vnd.oci.image.config.v1+json"
	MediaTypeOCILayer       = "application/vnd.oci.image.layer.v1.tar"
	MediaTypeOCILayerGzip   = "application/vnd.oci.image.layer.v1.tar+gzip"
	MediaTypeOCILayerZstd   = "application/vnd.oci.image.layer.v1.tar+zstd"
	MediaTypeDockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
	MediaTypeDockerList     = "application/vnd.docker.distribution.manifest.list.v2+json"
	MediaTypeDockerConfig   = "application/vnd.docker.container.image.v1+json"
	MediaTypeDockerLayer    = "application/vnd.docker.image.rootfs.diff.tar.gzip"
	MediaTypeDockerForeign  = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
)

// ErrNotFound means no image has the given name or ID.
var ErrNotFound = errors.New("image not known")

// ErrInUse means containers use the image (remove them or use force).
var ErrInUse = errors.New("image is in use by a container")

// Limits on documents read from registries and archives.
const (
	maxManifestSize = 4 << 20
	maxConfigSize   = 16 << 20
	maxIndexDepth   = 4
	maxLayers       = 500
)

// Snapshotter is the part of the snapshot store images need
// (cove/internal/engine/snapshot, adapted by SnapshotsOf).
type Snapshotter interface {
	// Has reports whether the committed snapshot chainID exists.
	Has(chainID string) bool
	// Unpack applies the uncompressed layer tar on parent and commits it
	// atomically as chainID; a read error from layer aborts it.
	Unpack(ctx context.Context, chainID, parent string, layer io.Reader) (int64, error)
	// Remove deletes a committed snapshot; it fails while one is in use.
	Remove(chainID string) error
	// Parents lists committed snapshots: chain ID -> parent chain ID.
	Parents() (map[string]string, error)
}

// Store is one image store, rooted at a --root directory.
type Store struct {
	root      string
	content   *content.Store
	snapshots Snapshotter
	meta      meta

	// InUse, set by the engine, returns the containers using an image (by
	// config digest); Remove refuses to remove such images unless forced.
	InUse func(imageID string) ([]string, error)
}

// Open opens (creating) the image store in root with the given snapshot store.
func Open(root string, snaps Snapshotter) (*Store, error) {
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, fmt.Errorf("image store: %w", err)
	}
	cs, err := content.Open(root)
	if err != nil {
		return nil, err
	}
	return &Store{root: root, content: cs, snapshots: snaps, meta: meta{path: filepath.Join(root, "meta.db")}}, nil
}

// Content returns the store's content store.
func (s *Store) Content() *content.Store { return s.content }

// Image is an image resolved from the store.
type Image struct {
	Record
	Names     []string // every name with this manifest
	Manifest  ocispec.Manifest
	Config    ocispec.Image
	RawConfig []byte
	ChainIDs  []string
}

// ID is the image ID (the config digest), as Docker shows it.
func (i *Image) ID() string { return i.Record.Config }

// Size is the compressed size of config and layers.
func (i *Image) Size() int64 {
	n := i.Manifest.Config.Size
	for _, l := range i.Manifest.Layers {
		n += l.Size
	}
	return n
}

// ChainIDs computes layer chain IDs from diff IDs: ChainID(L0) = DiffID(L0),
// ChainID(Ln) = sha256(ChainID(Ln-1) + " " + DiffID(Ln)).
func ChainIDs(diffIDs []string) []string {
	out := make([]string, len(diffIDs))
	for i, d := range diffIDs {
		if i == 0 {
			out[i] = d
			continue
		}
		sum := sha256.Sum256([]byte(out[i-1] + " " + d))
		out[i] = "sha256:" + hex.EncodeToString(sum[:])
	}
	return out
}

// load reads manifest and config of a record from the content store.
func (s *Store) load(r Record) (*Image, error) {
	mb, err := s.content.ReadAll(r.Digest, maxManifestSize)
	if err != nil {
		return nil, fmt.Errorf("image %s: manifest: %w", r.Name, err)
	}
	img := &Image{Record: r}
	if err := json.Unmarshal(mb, &img.Manifest); err != nil {
		return nil, fmt.Errorf("image %s: manifest %s: %w", r.Name, r.Digest, err)
	}
	img.RawConfig, err = s.content.ReadAll(img.Manifest.Config.Digest.String(), maxConfigSize)
	if err != nil {
		return nil, fmt.Errorf("image %s: config: %w", r.Name, err)
	}
	if err := json.Unmarshal(img.RawConfig, &img.Config); err != nil {
		return nil, fmt.Errorf("image %s: config: %w", r.Name, err)
	}
	diffIDs := make([]string, len(img.Config.RootFS.DiffIDs))
	for i, d := range img.Config.RootFS.DiffIDs {
		diffIDs[i] = d.String()
	}
	img.ChainIDs = ChainIDs(diffIDs)
	return img, nil
}

// List returns every image name with its manifest and config.
func (s *Store) List() ([]*Image, error) {
	recs, err := s.meta.list()
	if err != nil {
		return nil, err
	}
	names := map[string][]string{}
	for _, r := range recs {
		names[r.Digest] = append(names[r.Digest], r.Name)
	}
	var out []*Image
	for _, r := range recs {
		img, err := s.load(r)
		if err != nil {
			continue // broken record: repaired by GC
		}
		img.Names = names[r.Digest]
		out = append(out, img)
	}
	return out, nil
}

// Resolve finds the images a user's argument names: a reference
// (busybox, docker.io/library/busybox:latest), a full or abbreviated image
// ID (config digest, with or without "sha256:") or a manifest digest.
// byID is true when s named an ID, so the result may be several names.
func (s *Store) Resolve(arg string) (imgs []*Image, byID bool, err error) {
	if ref, perr := ParseReference(arg); perr == nil {
		r, ok, err := s.meta.get(ref.Name())
		if err != nil {
			return nil, false, err
		}
		if ok {
			img, err := s.load(r)
			if err != nil {
				return nil, false, err
			}
			return []*Image{img}, false, nil
		}
	}
	id := strings.TrimPrefix(arg, "sha256:")
	if len(id) >= 3 && len(id) <= 64 && strings.Trim(id, "0123456789abcdef") == "" {
		recs, err := s.meta.list()
		if err != nil {
			return nil, false, err
		}
		configs := map[string]bool{}
		for _, r := range recs {
			if strings.HasPrefix(r.Config, "sha256:"+id) || strings.HasPrefix(r.Digest, "sha256:"+id) {
				configs[r.Config] = true
				img, err := s.load(r)
				if err == nil {
					imgs = append(imgs, img)
				}
			}
		}
		if len(configs) > 1 {
			return nil, true, fmt.Errorf("image ID %q is ambiguous", arg)
		}
		if len(imgs) > 0 {
			return imgs, true, nil
		}
	}
	return nil, false, fmt.Errorf("%w: %s", ErrNotFound, arg)
}

// Get returns the one image arg names (the first name if arg is an ID).
func (s *Store) Get(arg string) (*Image, error) {
	imgs, _, err := s.Resolve(arg)
	if err != nil {
		return nil, err
	}
	return imgs[0], nil
}

// Tag gives the image src the additional name target.
func (s *Store) Tag(src, target string) error {
	img, err := s.Get(src)
	if err != nil {
		return err
	}
	ref, err := ParseReference(target)
	if err != nil {
		return err
	}
	if ref.Digest != "" {
		return fmt.Errorf("tag %s: a tag cannot contain a digest", target)
	}
	r := img.Record
	r.Name, r.Created = ref.Name(), time.Now().UTC()
	return s.meta.put(r)
}

// RemoveResult says what Remove did.
type RemoveResult struct {
	Untagged []string
	Deleted  []string // image IDs no longer referenced by any name
}

// Remove removes the image arg names: a name removes that name only, an ID
// every name of that image. Images used by containers are refused unless
// force is set. Blobs and snapshots no other image uses are then collected.
func (s *Store) Remove(ctx context.Context, arg string, force bool) (RemoveResult, error) {
	var res RemoveResult
	imgs, _, err := s.Resolve(arg)
	if err != nil {
		return res, err
	}
	id := imgs[0].ID()
	if s.InUse != nil && !force {
		users, err := s.InUse(id)
		if err != nil {
			return res, err
		}
		if len(users) > 0 {
			return res, fmt.Errorf("image %s: %w: %s (use --force)", arg, ErrInUse, strings.Join(users, ", "))
		}
	}
	var names []string
	for _, img := range imgs {
		names = append(names, img.Name)
	}
	if err := s.meta.del(names...); err != nil {
		return res, err
	}
	res.Untagged = names
	recs, err := s.meta.list()
	if err != nil {
		return res, err
	}
	still := false
	for _, r := range recs {
		if r.Config == id {
			still = true
		}
	}
	if !still {
		res.Deleted = append(res.Deleted, id)
		if _, err := s.GC(ctx, GCOptions{}); err != nil {
			return res, fmt.Errorf("image removed, but collecting its blobs failed: %w", err)
		}
	}
	return res, nil
}
