package image

import (
	"archive/tar"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Archive formats for Save and Load.
const (
	FormatDockerArchive = "docker-archive" // docker save / podman save default
	FormatOCIArchive    = "oci-archive"    // tar of an OCI image layout
	FormatOCIDir        = "oci-dir"        // an OCI image layout directory
)

// annotations in OCI layouts naming an image
const (
	annotationRefName       = "org.opencontainers.image.ref.name"
	annotationContainerdRef = "io.containerd.image.name"
)

// dockerManifestEntry is one entry of a docker-archive's manifest.json.
type dockerManifestEntry struct {
	Config   string   `json:"Config"`
	RepoTags []string `json:"RepoTags"`
	Layers   []string `json:"Layers"`
}

// Save writes the images args name to w (for FormatOCIDir, w is ignored
// and dir is written) in the given format.
func (s *Store) Save(ctx context.Context, args []string, format string, w io.Writer, dir string) error {
	var imgs []*Image
	for _, a := range args {
		img, err := s.Get(a)
		if err != nil {
			return err
		}
		ref, err := ParseReference(a)
		if err == nil && ref.Name() == img.Name {
			img.Names = []string{img.Name}
		} else {
			img.Names = nil // saved by ID: keep every name of that image
			all, _ := s.List()
			for _, o := range all {
				if o.Digest == img.Digest && !strings.HasPrefix(o.Name, "sha256:") {
					img.Names = append(img.Names, o.Name)
				}
			}
		}
		imgs = append(imgs, img)
	}
	switch format {
	case "", FormatDockerArchive:
		return s.saveDocker(ctx, imgs, w)
	case FormatOCIArchive:
		return s.saveOCI(imgs, &tarLayout{tw: tar.NewWriter(w)})
	case FormatOCIDir:
		return s.saveOCI(imgs, &dirLayout{dir: dir})
	}
	return fmt.Errorf("unknown archive format %q (docker-archive, oci-archive, oci-dir)", format)
}

// saveDocker writes the layout docker and podman save: <config>.json,
// <diffid>.tar (uncompressed layers), manifest.json and repositories.
func (s *Store) saveDocker(ctx context.Context, imgs []*Image, w io.Writer) error {
	tw := tar.NewWriter(w)
	written := map[string]bool{}
	var entries []dockerManifestEntry
	repos := map[string]map[string]string{}
	for _, img := range imgs {
		cfgName := strings.TrimPrefix(img.ID(), "sha256:") + ".json"
		e := dockerManifestEntry{Config: cfgName, RepoTags: []string{}}
		if !written[cfgName] {
			if err := writeTarFile(tw, cfgName, img.RawConfig); err != nil {
				return err
			}
			written[cfgName] = true
		}
		for i, l := range img.Manifest.Layers {
			layerName := strings.TrimPrefix(img.Config.RootFS.DiffIDs[i].String(), "sha256:") + ".tar"
			e.Layers = append(e.Layers, layerName)
			if written[layerName] {
				continue
			}
			if err := s.writeUncompressedLayer(ctx, tw, layerName, l); err != nil {
				return fmt.Errorf("save %s: layer %s: %w", img.Name, l.Digest, err)
			}
			written[layerName] = true
		}
		for _, n := range img.Names {
			ref, err := ParseReference(n)
			if err != nil || ref.Tag == "" {
				continue
			}
			e.RepoTags = append(e.RepoTags, ref.Name())
			if repos[ref.Repository()] == nil {
				repos[ref.Repository()] = map[string]string{}
			}
			repos[ref.Repository()][ref.Tag] = strings.TrimPrefix(img.Config.RootFS.DiffIDs[len(img.Config.RootFS.DiffIDs)-1].String(), "sha256:")
		}
		entries = append(entries, e)
	}
	mj, _ := json.Marshal(entries)
	if err := writeTarFile(tw, "manifest.json", mj); err != nil {
		return err
	}
	rj, _ := json.Marshal(repos)
	if err := writeTarFile(tw, "repositories", rj); err != nil {
		return err
	}
	return tw.Close()
}

// writeUncompressedLayer writes a layer's tar into the archive; a
// compressed blob is decompressed twice (once to learn its size).
func (s *Store) writeUncompressedLayer(ctx context.Context, tw *tar.Writer, name string, l ocispec.Descriptor) error {
	comp, err := decompressor(l.MediaType)
	if err != nil {
		return err
	}
	open := func() (io.ReadCloser, func(), error) {
		f, err := s.content.Open(l.Digest.String())
		if err != nil {
			return nil, nil, err
		}
		zr, err := decompress(comp, f)
		if err != nil {
			f.Close()
			return nil, nil, err
		}
		return zr, func() { zr.Close(); f.Close() }, nil
	}
	size := l.Size
	if comp != uncompressed {
		r, done, err := open()
		if err != nil {
			return err
		}
		size, err = io.Copy(io.Discard, r)
		done()
		if err != nil {
			return err
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	r, done, err := open()
	if err != nil {
		return err
	}
	defer done()
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: size, ModTime: time.Unix(0, 0), Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	_, err = io.Copy(tw, r)
	return err
}

func writeTarFile(tw *tar.Writer, name string, b []byte) error {
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(b)), ModTime: time.Unix(0, 0), Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	_, err := tw.Write(b)
	return err
}

// layoutWriter receives the files of an OCI image layout.
type layoutWriter interface {
	file(name string, b []byte) error
	blob(name string, size int64, r io.Reader) error
	close() error
}

type tarLayout struct{ tw *tar.Writer }

func (t *tarLayout) file(name string, b []byte) error { return writeTarFile(t.tw, name, b) }
func (t *tarLayout) blob(name string, size int64, r io.Reader) error {
	if err := t.tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: size, ModTime: time.Unix(0, 0), Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	_, err := io.Copy(t.tw, r)
	return err
}
func (t *tarLayout) close() error { return t.tw.Close() }

type dirLayout struct{ dir string }

func (d *dirLayout) file(name string, b []byte) error {
	return d.blob(name, int64(len(b)), strings.NewReader(string(b)))
}
func (d *dirLayout) blob(name string, _ int64, r io.Reader) error {
	p := filepath.Join(d.dir, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	f, err := os.Create(p)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
func (d *dirLayout) close() error { return nil }

// saveOCI writes an OCI image layout: blobs as stored (the manifests keep
// their digests), index.json naming each image.
func (s *Store) saveOCI(imgs []*Image, lw layoutWriter) error {
	written := map[string]bool{}
	put := func(d string) error {
		if written[d] {
			return nil
		}
		f, err := s.content.Open(d)
		if err != nil {
			return err
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			return err
		}
		written[d] = true
		return lw.blob("blobs/sha256/"+strings.TrimPrefix(d, "sha256:"), st.Size(), f)
	}
	idx := ocispec.Index{MediaType: MediaTypeOCIIndex}
	idx.SchemaVersion = 2
	for _, img := range imgs {
		for _, d := range append([]string{img.Digest, img.Manifest.Config.Digest.String()}, layerDigests(img)...) {
			if err := put(d); err != nil {
				return fmt.Errorf("save %s: %w", img.Name, err)
			}
		}
		desc := ocispec.Descriptor{MediaType: img.MediaType, Size: img.Record.Size, Platform: &ocispec.Platform{
			OS: img.Config.OS, Architecture: img.Config.Architecture, Variant: img.Config.Variant}}
		desc.Digest = digestOf(img.Digest)
		names := img.Names
		if len(names) == 0 {
			names = []string{""}
		}
		for _, n := range names {
			d := desc
			if n != "" && !strings.HasPrefix(n, "sha256:") {
				d.Annotations = map[string]string{annotationRefName: n, annotationContainerdRef: n}
			}
			idx.Manifests = append(idx.Manifests, d)
		}
	}
	ib, _ := json.Marshal(idx)
	if err := lw.file("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)); err != nil {
		return err
	}
	if err := lw.file("index.json", ib); err != nil {
		return err
	}
	return lw.close()
}

func layerDigests(img *Image) []string {
	var out []string
	for _, l := range img.Manifest.Layers {
		out = append(out, l.Digest.String())
	}
	return out
}
