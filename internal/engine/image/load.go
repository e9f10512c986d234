package image

import (
	"archive/tar"
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"cove/internal/engine/content"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func digestOf(s string) digest.Digest { return digest.Digest(s) }

// LoadOptions configure Load and LoadDir.
type LoadOptions struct {
	// Platform picks the manifest of multi-platform OCI indexes.
	Platform string
	// Name is the repository for OCI images whose annotation holds only a
	// tag (default localhost/loaded).
	Name string
	// Progress, if set, receives unpack events.
	Progress func(Event)
}

// archive is what Load collected from a tar: small metadata files in
// memory, everything else ingested into the content store.
type archive struct {
	small map[string][]byte
	blobs map[string]loadedBlob
	links map[string]string
}

type loadedBlob struct {
	digest string
	size   int64
	comp   compression
}

var loadSeq atomic.Int64

// Load reads a docker-archive or OCI archive (optionally gzip or zstd
// compressed) and stores, unpacks and names its images; it returns their
// names. Every blob is verified (by its name in OCI archives, against the
// config's diff IDs when unpacked) before any name appears.
func (s *Store) Load(ctx context.Context, r io.Reader, o LoadOptions) ([]string, error) {
	unlock, err := s.lockGC(false)
	if err != nil {
		return nil, err
	}
	defer unlock()
	br := bufio.NewReaderSize(r, 1<<16)
	head, _ := br.Peek(4)
	zr, err := decompress(sniff(head), br)
	if err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	defer zr.Close()
	a, err := s.readArchive(ctx, zr)
	if err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	var names []string
	switch {
	case a.small["manifest.json"] != nil:
		names, err = s.loadDocker(ctx, a, o)
	case a.small["index.json"] != nil:
		names, err = s.loadOCI(ctx, a.small["index.json"], func(d string) error {
			if !s.content.Has(d) {
				return fmt.Errorf("blob %s missing from the archive", d)
			}
			return nil
		}, o)
	default:
		err = errors.New("neither manifest.json (docker-archive) nor index.json (OCI archive) in the archive")
	}
	if err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	return names, nil
}

// LoadDir loads the images of an OCI image layout directory.
func (s *Store) LoadDir(ctx context.Context, dir string, o LoadOptions) ([]string, error) {
	unlock, err := s.lockGC(false)
	if err != nil {
		return nil, err
	}
	defer unlock()
	idx, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		return nil, fmt.Errorf("load %s: not an OCI layout: %w", dir, err)
	}
	names, err := s.loadOCI(ctx, idx, func(d string) error {
		if err := content.ValidDigest(d); err != nil {
			return err
		}
		f, err := os.Open(filepath.Join(dir, "blobs", "sha256", strings.TrimPrefix(d, "sha256:")))
		if err != nil {
			return err
		}
		defer f.Close()
		return s.ingest(d, f)
	}, o)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", dir, err)
	}
	return names, nil
}

// ingest copies r into the content store, verified against d.
func (s *Store) ingest(d string, r io.Reader) error {
	w, err := s.content.Writer(d, d, -1)
	if errors.Is(err, content.ErrExists) {
		return nil
	}
	if err != nil {
		return err
	}
	if w.Offset() > 0 {
		w.Truncate()
	}
	if _, err := io.Copy(w, r); err != nil {
		w.Close()
		return err
	}
	_, err = w.Commit()
	return err
}

var smallFiles = map[string]bool{"manifest.json": true, "index.json": true, "oci-layout": true, "repositories": true}

func (s *Store) readArchive(ctx context.Context, r io.Reader) (*archive, error) {
	a := &archive{small: map[string][]byte{}, blobs: map[string]loadedBlob{}, links: map[string]string{}}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return a, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read archive: %w", err)
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		name := path.Clean(strings.TrimPrefix(h.Name, "./"))
		switch h.Typeflag {
		case tar.TypeSymlink:
			a.links[name] = path.Join(path.Dir(name), h.Linkname)
			continue
		case tar.TypeLink:
			a.links[name] = path.Clean(h.Linkname)
			continue
		case tar.TypeReg:
		default:
			continue
		}
		if base := path.Base(name); base == "VERSION" || base == "json" {
			continue // legacy docker-archive per-layer metadata, unused
		}
		if smallFiles[name] {
			if h.Size > maxManifestSize {
				return nil, fmt.Errorf("%s: larger than %d bytes", name, maxManifestSize)
			}
			b, err := io.ReadAll(tr)
			if err != nil {
				return nil, fmt.Errorf("read %s: %w", name, err)
			}
			a.small[name] = b
			continue
		}
		expected := ""
		if hex, ok := strings.CutPrefix(name, "blobs/sha256/"); ok {
			expected = "sha256:" + hex
			if err := content.ValidDigest(expected); err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
		}
		b, err := s.ingestEntry(tr, expected, h.Size)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		a.blobs[name] = b
	}
}

func (s *Store) ingestEntry(r io.Reader, expected string, size int64) (loadedBlob, error) {
	br := bufio.NewReaderSize(r, 1<<16)
	head, _ := br.Peek(4)
	b := loadedBlob{size: size, comp: sniff(head)}
	ref := expected
	if ref == "" {
		ref = fmt.Sprintf("load-%d-%d-%d", os.Getpid(), time.Now().UnixNano(), loadSeq.Add(1))
	}
	w, err := s.content.Writer(ref, expected, size)
	if errors.Is(err, content.ErrExists) {
		b.digest = expected
		_, err = io.Copy(io.Discard, br)
		return b, err
	}
	if err != nil {
		return b, err
	}
	if w.Offset() > 0 {
		w.Truncate()
	}
	if _, err := io.Copy(w, br); err != nil {
		w.Discard()
		return b, err
	}
	if b.digest, err = w.Commit(); err != nil {
		return b, err
	}
	return b, nil
}

func (a *archive) blob(name string) (loadedBlob, error) {
	name = path.Clean(strings.TrimPrefix(name, "./"))
	for i := 0; i < 8; i++ {
		if b, ok := a.blobs[name]; ok {
			return b, nil
		}
		t, ok := a.links[name]
		if !ok {
			break
		}
		name = t
	}
	return loadedBlob{}, fmt.Errorf("%s: not in the archive", name)
}

func layerMediaType(c compression) string {
	switch c {
	case compGzip:
		return MediaTypeOCILayerGzip
	case compZstd:
		return MediaTypeOCILayerZstd
	}
	return MediaTypeOCILayer
}

func (s *Store) loadDocker(ctx context.Context, a *archive, o LoadOptions) ([]string, error) {
	var entries []dockerManifestEntry
	if err := json.Unmarshal(a.small["manifest.json"], &entries); err != nil {
		return nil, fmt.Errorf("manifest.json: %w", err)
	}
	var names []string
	for _, e := range entries {
		cfg, err := a.blob(e.Config)
		if err != nil {
			return nil, err
		}
		m := ocispec.Manifest{MediaType: MediaTypeOCIManifest}
		m.SchemaVersion = 2
		m.Config = ocispec.Descriptor{MediaType: MediaTypeOCIConfig, Digest: digestOf(cfg.digest), Size: cfg.size}
		for _, l := range e.Layers {
			lb, err := a.blob(l)
			if err != nil {
				return nil, err
			}
			m.Layers = append(m.Layers, ocispec.Descriptor{MediaType: layerMediaType(lb.comp), Digest: digestOf(lb.digest), Size: lb.size})
		}
		mb, err := json.Marshal(m)
		if err != nil {
			return nil, err
		}
		var refs []string
		for _, t := range e.RepoTags {
			ref, err := ParseReference(t)
			if err != nil {
				return nil, fmt.Errorf("RepoTags: %w", err)
			}
			refs = append(refs, ref.Name())
		}
		n, err := s.register(ctx, mb, MediaTypeOCIManifest, "", refs, "docker-archive", o)
		if err != nil {
			return nil, err
		}
		names = append(names, n...)
	}
	return names, nil
}

// loadOCI registers the images an OCI layout's index.json lists; ensure
// makes a blob available in the content store (verified).
func (s *Store) loadOCI(ctx context.Context, indexJSON []byte, ensure func(d string) error, o LoadOptions) ([]string, error) {
	platform, err := ParsePlatform(o.Platform)
	if err != nil {
		return nil, err
	}
	var idx ocispec.Index
	if err := json.Unmarshal(indexJSON, &idx); err != nil {
		return nil, fmt.Errorf("index.json: %w", err)
	}
	repo := o.Name
	if repo == "" {
		repo = "localhost/loaded"
	}
	var names []string
	for _, desc := range idx.Manifests {
		var refs []string
		if n := desc.Annotations[annotationContainerdRef]; n != "" {
			refs = append(refs, n)
		} else if n := desc.Annotations[annotationRefName]; n != "" {
			if strings.ContainsAny(n, "/:@") {
				refs = append(refs, n)
			} else {
				refs = append(refs, repo+":"+n)
			}
		}
		for i, r := range refs {
			ref, err := ParseReference(r)
			if err != nil {
				return nil, fmt.Errorf("image name %q: %w", r, err)
			}
			refs[i] = ref.Name()
		}
		d, mt := desc.Digest.String(), desc.MediaType
		indexDgst := ""
		seen := map[string]bool{}
		for depth := 0; isIndex(mt); depth++ {
			if depth > maxIndexDepth || seen[d] {
				return nil, fmt.Errorf("index %s: nested too deep or looping", d)
			}
			seen[d] = true
			if err := ensure(d); err != nil {
				return nil, err
			}
			b, err := s.content.ReadAll(d, maxManifestSize)
			if err != nil {
				return nil, err
			}
			var sub ocispec.Index
			if err := json.Unmarshal(b, &sub); err != nil {
				return nil, fmt.Errorf("index %s: %w", d, err)
			}
			child, err := pickPlatform(sub, platform)
			if err != nil {
				return nil, fmt.Errorf("index %s: %w", d, err)
			}
			if indexDgst == "" {
				indexDgst = d
			}
			d, mt = child.Digest.String(), child.MediaType
		}
		if !isManifest(mt) {
			return nil, fmt.Errorf("index.json: unsupported media type %q", mt)
		}
		if err := ensure(d); err != nil {
			return nil, err
		}
		mb, err := s.content.ReadAll(d, maxManifestSize)
		if err != nil {
			return nil, err
		}
		m, err := parseManifest(mb)
		if err != nil {
			return nil, fmt.Errorf("manifest %s: %w", d, err)
		}
		for _, b := range append([]ocispec.Descriptor{m.Config}, m.Layers...) {
			if err := ensure(b.Digest.String()); err != nil {
				return nil, err
			}
		}
		n, err := s.register(ctx, mb, mt, indexDgst, refs, "oci", o)
		if err != nil {
			return nil, err
		}
		names = append(names, n...)
	}
	return names, nil
}

// register stores a manifest whose blobs are all in the content store,
// unpacks its layers and names it (by digest when refs is empty).
func (s *Store) register(ctx context.Context, mb []byte, mt, indexDgst string, refs []string, source string, o LoadOptions) ([]string, error) {
	m, err := parseManifest(mb)
	if err != nil {
		return nil, err
	}
	d, err := s.content.Put(mb, "")
	if err != nil {
		return nil, err
	}
	raw, err := s.content.ReadAll(m.Config.Digest.String(), maxConfigSize)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	diffIDs, err := configDiffIDs(raw, len(m.Layers))
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", m.Config.Digest, err)
	}
	for _, l := range m.Layers {
		if !s.content.Has(l.Digest.String()) {
			return nil, fmt.Errorf("layer %s missing", l.Digest)
		}
	}
	missing := func(ctx context.Context, d ocispec.Descriptor, w *content.Writer, _ func(int64)) error {
		return fmt.Errorf("blob %s missing", d.Digest)
	}
	if err := s.fetchLayers(ctx, d, m.Layers, diffIDs, missing, RemoteOptions{Progress: o.Progress}); err != nil {
		return nil, fmt.Errorf("image %s: %w", d, err)
	}
	if len(refs) == 0 {
		refs = []string{d}
	}
	now := time.Now().UTC()
	var recs []Record
	for _, r := range refs {
		recs = append(recs, Record{Name: r, Digest: d, MediaType: mt, Size: int64(len(mb)), Config: m.Config.Digest.String(),
			Index: indexDgst, Source: source, Created: now})
	}
	if err := s.meta.put(recs...); err != nil {
		return nil, err
	}
	return refs, nil
}

// EnsureUnpacked unpacks from the content store whatever snapshots of the
// image are missing (after a crash, or a snapshot store that was reset),
// so the engine can rely on img.ChainIDs existing. It needs no network.
func (s *Store) EnsureUnpacked(ctx context.Context, img *Image, progress func(Event)) error {
	if s.snapshots == nil || len(img.ChainIDs) == 0 || s.snapshots.Has(img.ChainIDs[len(img.ChainIDs)-1]) {
		return nil
	}
	unlock, err := s.lockGC(false)
	if err != nil {
		return err
	}
	defer unlock()
	diffIDs := make([]string, len(img.Config.RootFS.DiffIDs))
	for i, d := range img.Config.RootFS.DiffIDs {
		diffIDs[i] = d.String()
	}
	missing := func(ctx context.Context, d ocispec.Descriptor, w *content.Writer, _ func(int64)) error {
		return fmt.Errorf("blob %s is not in the content store (pull the image again)", d.Digest)
	}
	if err := s.fetchLayers(ctx, img.Name, img.Manifest.Layers, diffIDs, missing, RemoteOptions{Progress: progress}); err != nil {
		return fmt.Errorf("image %s: %w", img.Name, err)
	}
	return nil
}
