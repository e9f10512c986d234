package image

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"cove/internal/engine/content"

	"github.com/klauspost/compress/gzip"
)

func TestSaveLoadRoundTrip(t *testing.T) {
	tr := newTestRegistry(t)
	tr.push(t, "test/rt:v1", 80_000, 3)
	ctx := context.Background()
	src, _ := newTestStore(t)
	img, err := src.Pull(ctx, tr.host+"/test/rt:v1", PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, format := range []string{FormatDockerArchive, FormatOCIArchive, FormatOCIDir} {
		t.Run(format, func(t *testing.T) {
			var buf bytes.Buffer
			dir := filepath.Join(t.TempDir(), "layout")
			if err := src.Save(ctx, []string{img.Name}, format, &buf, dir); err != nil {
				t.Fatal(err)
			}
			dst, snaps := newTestStore(t)
			var names []string
			if format == FormatOCIDir {
				names, err = dst.LoadDir(ctx, dir, LoadOptions{})
			} else {
				names, err = dst.Load(ctx, &buf, LoadOptions{})
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(names) != 1 || names[0] != img.Name {
				t.Fatalf("loaded names %v, want [%s]", names, img.Name)
			}
			got, err := dst.Get(img.Name)
			if err != nil {
				t.Fatal(err)
			}
			if got.ID() != img.ID() {
				t.Errorf("image ID %s, want %s", got.ID(), img.ID())
			}
			if format != FormatDockerArchive && got.Digest != img.Digest {
				t.Errorf("OCI layout changed the manifest digest: %s != %s", got.Digest, img.Digest)
			}
			if snaps.count() != 3 || !snaps.Has(img.ChainIDs[2]) {
				t.Errorf("%d snapshots after load", snaps.count())
			}
		})
	}
}

func TestLoadRejectsTamperedLayer(t *testing.T) {
	tr := newTestRegistry(t)
	tr.push(t, "test/tamper:v1", 80_000, 1)
	ctx := context.Background()
	src, _ := newTestStore(t)
	img, err := src.Pull(ctx, tr.host+"/test/tamper:v1", PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := src.Save(ctx, []string{img.Name}, FormatDockerArchive, &buf, ""); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	// Flip a byte inside the layer's file data (after the first headers).
	i := bytes.Index(b, []byte("ustar"))
	i = bytes.Index(b[i+600:], []byte("ustar")) + i + 600 + 2000
	b[i] ^= 0xff
	dst, snaps := newTestStore(t)
	if _, err := dst.Load(ctx, bytes.NewReader(b), LoadOptions{}); err == nil {
		t.Fatal("tampered archive loaded")
	}
	if imgs, _ := dst.List(); len(imgs) != 0 || snaps.count() != 0 {
		t.Fatalf("%d images, %d snapshots after a failed load", len(imgs), snaps.count())
	}
}

func TestImportDirectory(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "bin"), 0o755)
	os.WriteFile(filepath.Join(root, "bin", "hello"), []byte("#!/bin/sh\necho hi\n"), 0o755)
	os.Link(filepath.Join(root, "bin", "hello"), filepath.Join(root, "bin", "hi"))
	os.Symlink("hello", filepath.Join(root, "bin", "sym"))
	s, snaps := newTestStore(t)
	img, err := s.Import(context.Background(), root, nil, "example.com/rootfs:1", ImportOptions{Cmd: []string{"/bin/hello"}})
	if err != nil {
		t.Fatal(err)
	}
	if img.Name != "example.com/rootfs:1" || len(img.ChainIDs) != 1 || img.Config.Config.Cmd[0] != "/bin/hello" {
		t.Fatalf("imported %+v", img.Record)
	}
	files := snaps.files[img.ChainIDs[0]]
	want := map[string]bool{"bin/": true, "bin/hello": true, "bin/hi": true, "bin/sym": true}
	for _, f := range files {
		delete(want, f)
	}
	if len(want) != 0 {
		t.Fatalf("layer lacks %v (has %v)", want, files)
	}
	if img.Manifest.Layers[0].Digest.String() != img.Config.RootFS.DiffIDs[0].String() {
		t.Error("uncompressed layer digest differs from its diff ID")
	}
}

func TestImportCompressedTarballFromReader(t *testing.T) {
	raw := tarOf(t, map[string]string{"etc/hostname": "x\n"})
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(raw)
	zw.Close()
	s, snaps := newTestStore(t)
	img, err := s.Import(context.Background(), "-", &gz, "", ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Stored uncompressed: the layer digest is the diff ID of the tar.
	if got := img.Manifest.Layers[0].Digest.String(); got != content.Digest(raw) {
		t.Fatalf("layer %s, want the uncompressed tar's %s", got, content.Digest(raw))
	}
	if !strings.HasPrefix(img.Name, "sha256:") || snaps.count() != 1 {
		t.Fatalf("unnamed import stored as %q with %d snapshots", img.Name, snaps.count())
	}
	if _, err := s.Get(img.ID()[7:19]); err != nil {
		t.Fatalf("lookup by short ID: %v", err)
	}
}

func TestEnsureUnpackedRestoresSnapshots(t *testing.T) {
	tr := newTestRegistry(t)
	tr.push(t, "test/eu:v1", 30_000, 2)
	s, snaps := newTestStore(t)
	ctx := context.Background()
	img, err := s.Pull(ctx, tr.host+"/test/eu:v1", PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	snaps.Remove(img.ChainIDs[1]) // lost, e.g. by a crash
	tr.srv.Close()                // and no network
	if err := s.EnsureUnpacked(ctx, img, nil); err != nil {
		t.Fatal(err)
	}
	if !snaps.Has(img.ChainIDs[1]) {
		t.Fatal("top snapshot not restored")
	}
}
