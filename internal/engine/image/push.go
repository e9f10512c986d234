package image

import (
	"context"
	"fmt"
	"io"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/google/go-containerregistry/pkg/name"
)

// Push uploads the image src to dest (src's own name if dest is empty):
// the manifest exactly as stored, so the registry serves the same digest.
// It returns the manifest digest.
func (s *Store) Push(ctx context.Context, src, dest string, o RemoteOptions) (string, error) {
	img, err := s.Get(src)
	if err != nil {
		return "", err
	}
	if dest == "" {
		dest = img.Name
	}
	ref, err := ParseReference(dest)
	if err != nil {
		return "", err
	}
	if err := s.push(ctx, img, ref, o); err != nil {
		return "", fmt.Errorf("push %s: %w", ref, err)
	}
	return img.Digest, nil
}

func (s *Store) push(ctx context.Context, img *Image, ref Reference, o RemoteOptions) error {
	var nref name.Reference
	var err error
	if ref.Digest != "" {
		if ref.Digest != img.Digest {
			return fmt.Errorf("the image's manifest is %s, not %s", img.Digest, ref.Digest)
		}
		nref, err = name.NewDigest(ref.Repository()+"@"+ref.Digest, nameOpts(ref.Domain, o)...)
	} else {
		nref, err = name.NewTag(ref.Repository()+":"+ref.Tag, nameOpts(ref.Domain, o)...)
	}
	if err != nil {
		return err
	}
	for _, l := range img.Manifest.Layers {
		if !s.content.Has(l.Digest.String()) {
			return fmt.Errorf("layer %s is not in the content store (imported without its blobs?)", l.Digest)
		}
	}
	raw, err := s.content.ReadAll(img.Digest, maxManifestSize)
	if err != nil {
		return err
	}
	vimg, err := partial.CompressedToImage(&storeImage{s: s, img: img, raw: raw})
	if err != nil {
		return err
	}
	opts := []remote.Option{
		remote.WithContext(ctx),
		remote.WithAuthFromKeychain(o.keychain()),
		remote.WithTransport(o.baseTransport(ref.Domain)),
		remote.WithJobs(o.jobs()),
	}
	if o.Progress != nil {
		ch := make(chan v1.Update, 16)
		opts = append(opts, remote.WithProgress(ch))
		done := make(chan struct{})
		go func() {
			defer close(done)
			for u := range ch {
				o.emit(Event{Kind: EventUploading, Image: ref.String(), Current: u.Complete, Total: u.Total})
			}
		}()
		defer func() { <-done }()
	}
	if err := remote.Write(nref, vimg, opts...); err != nil {
		return err
	}
	o.emit(Event{Kind: EventDone, Image: ref.String(), Layer: img.Digest})
	return nil
}

// storeImage serves a stored image to go-containerregistry's uploader.
type storeImage struct {
	s   *Store
	img *Image
	raw []byte
}

func (i *storeImage) RawConfigFile() ([]byte, error) { return i.img.RawConfig, nil }
func (i *storeImage) MediaType() (types.MediaType, error) {
	return types.MediaType(i.img.MediaType), nil
}
func (i *storeImage) RawManifest() ([]byte, error) { return i.raw, nil }

func (i *storeImage) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	if h.String() == i.img.Manifest.Config.Digest.String() {
		return &storeBlob{s: i.s, digest: h, size: int64(len(i.img.RawConfig)), mt: i.img.Manifest.Config.MediaType}, nil
	}
	for _, l := range i.img.Manifest.Layers {
		if l.Digest.String() == h.String() {
			return &storeBlob{s: i.s, digest: h, size: l.Size, mt: l.MediaType}, nil
		}
	}
	return nil, fmt.Errorf("blob %s is not part of the image", h)
}

type storeBlob struct {
	s      *Store
	digest v1.Hash
	size   int64
	mt     string
}

func (b *storeBlob) Digest() (v1.Hash, error)            { return b.digest, nil }
func (b *storeBlob) Size() (int64, error)                { return b.size, nil }
func (b *storeBlob) MediaType() (types.MediaType, error) { return types.MediaType(b.mt), nil }
func (b *storeBlob) Compressed() (io.ReadCloser, error)  { return b.s.content.Open(b.digest.String()) }
