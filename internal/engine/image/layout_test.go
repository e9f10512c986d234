package image

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"cove/internal/engine/content"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func tarOf(t *testing.T, files map[string]string) []byte {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for n, c := range files {
		tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(c)), Typeflag: tar.TypeReg})
		tw.Write([]byte(c))
	}
	tw.Close()
	return b.Bytes()
}

// writeLayout writes an OCI layout with one layer per (media type, tar);
// diffIDs may be overridden to make a lying config.
func writeLayout(t *testing.T, dir string, mts []string, tars [][]byte, diffIDs []string) {
	t.Helper()
	os.MkdirAll(filepath.Join(dir, "blobs", "sha256"), 0o755)
	put := func(b []byte) string {
		d := content.Digest(b)
		os.WriteFile(filepath.Join(dir, "blobs", "sha256", strings.TrimPrefix(d, "sha256:")), b, 0o644)
		return d
	}
	var m ocispec.Manifest
	m.SchemaVersion, m.MediaType = 2, MediaTypeOCIManifest
	var cfg ocispec.Image
	cfg.OS, cfg.Architecture, cfg.RootFS.Type = "linux", "amd64", "layers"
	for i, raw := range tars {
		blob := raw
		switch mts[i] {
		case MediaTypeOCILayerGzip:
			var b bytes.Buffer
			zw := gzip.NewWriter(&b)
			zw.Write(raw)
			zw.Close()
			blob = b.Bytes()
		case MediaTypeOCILayerZstd:
			zw, _ := zstd.NewWriter(nil)
			blob = zw.EncodeAll(raw, nil)
		}
		m.Layers = append(m.Layers, ocispec.Descriptor{MediaType: mts[i], Digest: digest.Digest(put(blob)), Size: int64(len(blob))})
		d := content.Digest(raw)
		if diffIDs != nil {
			d = diffIDs[i]
		}
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, digest.Digest(d))
	}
	cb, _ := json.Marshal(cfg)
	m.Config = ocispec.Descriptor{MediaType: MediaTypeOCIConfig, Digest: digest.Digest(put(cb)), Size: int64(len(cb))}
	mb, _ := json.Marshal(m)
	idx := ocispec.Index{MediaType: MediaTypeOCIIndex, Manifests: []ocispec.Descriptor{{MediaType: MediaTypeOCIManifest,
		Digest: digest.Digest(put(mb)), Size: int64(len(mb)), Annotations: map[string]string{annotationRefName: "v1"}}}}
	idx.SchemaVersion = 2
	ib, _ := json.Marshal(idx)
	os.WriteFile(filepath.Join(dir, "index.json"), ib, 0o644)
	os.WriteFile(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644)
}

func TestLoadLayoutWithGzipZstdAndPlainLayers(t *testing.T) {
	dir := t.TempDir()
	mts := []string{MediaTypeOCILayerZstd, MediaTypeOCILayerGzip, MediaTypeOCILayer}
	tars := [][]byte{tarOf(t, map[string]string{"a": "1"}), tarOf(t, map[string]string{"b": "2"}), tarOf(t, map[string]string{"c": "3"})}
	writeLayout(t, dir, mts, tars, nil)
	s, snaps := newTestStore(t)
	names, err := s.LoadDir(context.Background(), dir, LoadOptions{Name: "example.com/mixed"})
	if err != nil {
		t.Fatal(err)
	}
	img, err := s.Get(names[0])
	if err != nil || img.Name != "example.com/mixed:v1" {
		t.Fatalf("loaded %v, %v", names, err)
	}
	for i, c := range img.ChainIDs {
		if want := []string{"a", "b", "c"}[i]; len(snaps.files[c]) != 1 || snaps.files[c][0] != want {
			t.Errorf("layer %d unpacked %v, want [%s]", i, snaps.files[c], want)
		}
	}
}

func TestLoadRefusesConfigThatLiesAboutDiffIDs(t *testing.T) {
	dir := t.TempDir()
	tars := [][]byte{tarOf(t, map[string]string{"a": "1"}), tarOf(t, map[string]string{"evil": "2"})}
	writeLayout(t, dir, []string{MediaTypeOCILayerGzip, MediaTypeOCILayerZstd}, tars,
		[]string{content.Digest(tars[0]), content.Digest([]byte("something else"))})
	s, snaps := newTestStore(t)
	_, err := s.LoadDir(context.Background(), dir, LoadOptions{})
	if err == nil || !strings.Contains(err.Error(), "diff ID mismatch") {
		t.Fatalf("load: %v", err)
	}
	if imgs, _ := s.List(); len(imgs) != 0 || snaps.count() != 1 {
		t.Fatalf("%d images, %d snapshots (want only the honest base layer)", len(imgs), snaps.count())
	}
}
