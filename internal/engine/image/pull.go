package image

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"cove/internal/engine/content"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// EventKind says what an Event reports.
type EventKind int

// Event kinds, in the order a layer goes through them.
const (
	EventResolved    EventKind = iota // manifest found: Total is the number of layers
	EventExists                       // layer already stored (and unpacked)
	EventWaiting                      // queued for a download slot
	EventDownloading                  // Current of Total bytes
	EventDownloaded                   // verified and stored
	EventUnpacking                    // being unpacked
	EventUnpacked                     // unpacked into its snapshot
	EventUploading                    // push: Current of Total bytes
	EventUploaded                     // push: stored by the registry
	EventDone                         // image complete; Layer holds the manifest digest
)

// Event reports progress of a transfer.
type Event struct {
	Kind    EventKind
	Image   string
	Layer   string // blob digest
	Current int64
	Total   int64
}

// PullOptions configure Pull.
type PullOptions struct {
	RemoteOptions
	// Platform is os/arch[/variant]; default linux/<this machine's arch>.
	Platform string
}

// Pull fetches an image from its registry into the store, unpacks its
// layers into snapshots and names it. Blobs are downloaded in parallel into
// the content store and each layer is unpacked while it downloads, in
// order; nothing is committed that failed verification, and the image name
// appears only once everything is stored.
func (s *Store) Pull(ctx context.Context, arg string, o PullOptions) (*Image, error) {
	ref, err := ParseReference(arg)
	if err != nil {
		return nil, err
	}
	img, err := s.pull(ctx, ref, o)
	if err != nil {
		return nil, fmt.Errorf("pull %s: %w", ref, err)
	}
	return img, nil
}

func (s *Store) pull(ctx context.Context, ref Reference, o PullOptions) (*Image, error) {
	platform, err := ParsePlatform(o.Platform)
	if err != nil {
		return nil, err
	}
	unlock, err := s.lockGC(false)
	if err != nil {
		return nil, err
	}
	defer unlock()
	c, err := newClient(ctx, ref, o.RemoteOptions, false)
	if err != nil {
		return nil, err
	}
	tagOrDigest := ref.Digest
	if tagOrDigest == "" {
		tagOrDigest = ref.Tag
	}
	res, err := c.resolve(ctx, tagOrDigest, platform)
	if err != nil {
		return nil, err
	}
	m, err := parseManifest(res.manifest)
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", res.digest, err)
	}
	o.emit(Event{Kind: EventResolved, Image: ref.String(), Layer: res.digest, Total: int64(len(m.Layers))})

	if !s.content.Has(m.Config.Digest.String()) {
		if err := s.fetchToStore(ctx, c, m.Config, nil); err != nil {
			return nil, fmt.Errorf("config %s: %w", m.Config.Digest, err)
		}
	}
	rawConfig, err := s.content.ReadAll(m.Config.Digest.String(), maxConfigSize)
	if err != nil {
		return nil, err
	}
	diffIDs, err := configDiffIDs(rawConfig, len(m.Layers))
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", m.Config.Digest, err)
	}
	fetch := func(ctx context.Context, d ocispec.Descriptor, w *content.Writer, onBytes func(int64)) error {
		return c.fetchBlob(ctx, d, w, onBytes)
	}
	if err := s.fetchLayers(ctx, ref.String(), m.Layers, diffIDs, fetch, o.RemoteOptions); err != nil {
		return nil, err
	}
	rec := Record{
		Name: ref.Name(), Digest: res.digest, MediaType: res.mediaType, Size: int64(len(res.manifest)),
		Config: m.Config.Digest.String(), Source: ref.String(), Created: time.Now().UTC(),
	}
	if res.index != nil {
		if _, err := s.content.Put(res.index, res.indexDgst); err != nil {
			return nil, err
		}
		rec.Index = res.indexDgst
	}
	if _, err := s.content.Put(res.manifest, res.digest); err != nil {
		return nil, err
	}
	if err := s.meta.put(rec); err != nil {
		return nil, err
	}
	o.emit(Event{Kind: EventDone, Image: ref.String(), Layer: res.digest})
	return s.load(rec)
}

// parseManifest decodes an image manifest and checks what cove relies on.
func parseManifest(b []byte) (ocispec.Manifest, error) {
	var m ocispec.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return m, err
	}
	switch m.Config.MediaType {
	case MediaTypeOCIConfig, MediaTypeDockerConfig:
	default:
		return m, fmt.Errorf("unsupported config media type %q", m.Config.MediaType)
	}
	if err := content.ValidDigest(m.Config.Digest.String()); err != nil {
		return m, fmt.Errorf("config: %w", err)
	}
	if m.Config.Size <= 0 || m.Config.Size > maxConfigSize {
		return m, fmt.Errorf("config size %d out of range", m.Config.Size)
	}
	if len(m.Layers) > maxLayers {
		return m, fmt.Errorf("%d layers: more than the %d cove accepts", len(m.Layers), maxLayers)
	}
	for _, l := range m.Layers {
		if _, err := decompressor(l.MediaType); err != nil {
			return m, fmt.Errorf("layer %s: %w", l.Digest, err)
		}
		if err := content.ValidDigest(l.Digest.String()); err != nil {
			return m, fmt.Errorf("layer: %w", err)
		}
		if l.Size < 0 {
			return m, fmt.Errorf("layer %s: negative size", l.Digest)
		}
	}
	return m, nil
}

// configDiffIDs returns the config's rootfs.diff_ids, one per layer.
func configDiffIDs(raw []byte, layers int) ([]string, error) {
	var cfg ocispec.Image
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return nil, err
	}
	if len(cfg.RootFS.DiffIDs) != layers {
		return nil, fmt.Errorf("config lists %d diff IDs for %d layers", len(cfg.RootFS.DiffIDs), layers)
	}
	out := make([]string, layers)
	for i, d := range cfg.RootFS.DiffIDs {
		if err := content.ValidDigest(d.String()); err != nil {
			return nil, fmt.Errorf("diff ID: %w", err)
		}
		out[i] = d.String()
	}
	return out, nil
}

// fetchFunc downloads one blob into an ingest writer.
type fetchFunc func(ctx context.Context, d ocispec.Descriptor, w *content.Writer, onBytes func(int64)) error

// fetchToStore downloads a blob into the content store unless present.
func (s *Store) fetchToStore(ctx context.Context, c *client, d ocispec.Descriptor, onBytes func(int64)) error {
	w, err := s.content.Writer(d.Digest.String(), d.Digest.String(), d.Size)
	if errors.Is(err, content.ErrExists) {
		return nil
	}
	if err != nil {
		return err
	}
	if onBytes == nil {
		onBytes = func(int64) {}
	}
	if err := c.fetchBlob(ctx, d, w, onBytes); err != nil {
		w.Abort(err)
		return err
	}
	_, err = w.Commit()
	return err
}

// layerSlot hands a layer's data from its downloader to the unpacker.
type layerSlot struct {
	ready chan struct{}
	r     io.ReadCloser // follows the download, or the stored blob
	err   error
}

// fetchLayers downloads layers in parallel (o.Jobs at a time, in order) and
// unpacks each, in order, while it streams in: the unpacker reads the
// ingest file as it grows, and sees EOF only after the blob's digest has
// been verified; the unpacked tar is checked against its diff ID before
// the snapshot is kept.
func (s *Store) fetchLayers(ctx context.Context, image string, layers []ocispec.Descriptor, diffIDs []string, fetch fetchFunc, o RemoteOptions) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	chains := ChainIDs(diffIDs)
	n := len(layers)
	slots := make([]*layerSlot, n)
	need := make([]bool, n)
	for i := range layers {
		slots[i] = &layerSlot{ready: make(chan struct{})}
		need[i] = s.snapshots != nil && !s.snapshots.Has(chains[i])
	}
	errs := make([]error, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, o.jobs())
	wg.Add(1)
	go func() { // start downloads in layer order, o.jobs() at a time
		defer wg.Done()
		for _, l := range layers {
			o.emit(Event{Kind: EventWaiting, Image: image, Layer: l.Digest.String(), Total: l.Size})
		}
		for i := range layers {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				for j := i; j < n; j++ {
					slots[j].err = context.Cause(ctx)
					close(slots[j].ready)
				}
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				if err := s.fetchLayer(ctx, image, layers[i], slots[i], need[i], fetch, o); err != nil {
					errs[i] = fmt.Errorf("layer %s: %w", layers[i].Digest, err)
					cancel(errs[i])
				}
			}()
		}
	}()

	var unpackErr error
	parent := ""
	for i, l := range layers {
		if !need[i] {
			parent = chains[i]
			continue
		}
		<-slots[i].ready
		if slots[i].err != nil {
			break // the downloader recorded why
		}
		o.emit(Event{Kind: EventUnpacking, Image: image, Layer: l.Digest.String(), Total: l.Size})
		err := s.unpackLayer(ctx, l, diffIDs[i], chains[i], parent, slots[i].r)
		if err != nil {
			unpackErr = fmt.Errorf("layer %s: %w", l.Digest, err)
			cancel(unpackErr)
			break
		}
		o.emit(Event{Kind: EventUnpacked, Image: image, Layer: l.Digest.String(), Total: l.Size})
		parent = chains[i]
	}
	wg.Wait()
	for _, sl := range slots {
		if sl.r != nil {
			sl.r.Close()
		}
	}
	for _, err := range errs {
		if err != nil && !errors.Is(err, context.Canceled) {
			return err
		}
	}
	if unpackErr != nil {
		return unpackErr
	}
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return ctx.Err()
}

func (s *Store) fetchLayer(ctx context.Context, image string, l ocispec.Descriptor, slot *layerSlot, need bool, fetch fetchFunc, o RemoteOptions) (err error) {
	readyOnce := sync.OnceFunc(func() { close(slot.ready) })
	defer func() {
		if err != nil && slot.r == nil {
			slot.err = err
		}
		readyOnce()
	}()
	d := l.Digest.String()
	w, err := s.content.Writer(d, d, l.Size)
	if errors.Is(err, content.ErrExists) {
		if need {
			f, err := s.content.Open(d)
			if err != nil {
				return err
			}
			slot.r = f
		}
		o.emit(Event{Kind: EventExists, Image: image, Layer: d, Current: l.Size, Total: l.Size})
		return nil
	}
	if err != nil {
		return err
	}
	if need {
		r, err := w.Follow()
		if err != nil {
			w.Close()
			return err
		}
		slot.r = r
	}
	readyOnce()
	var last time.Time
	onBytes := func(n int64) {
		if now := time.Now(); now.Sub(last) > 100*time.Millisecond || n == l.Size {
			last = now
			o.emit(Event{Kind: EventDownloading, Image: image, Layer: d, Current: n, Total: l.Size})
		}
	}
	if err := fetch(ctx, l, w, onBytes); err != nil {
		w.Abort(err)
		return err
	}
	if _, err := w.Commit(); err != nil {
		return err
	}
	o.emit(Event{Kind: EventDownloaded, Image: image, Layer: d, Current: l.Size, Total: l.Size})
	return nil
}
