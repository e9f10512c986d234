package snapshot

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// benchLayer is an incompressible ~50 MB layer: 200 files of 256 KiB in
// 10 directories.
func benchLayer(b *testing.B, seed uint64) []byte {
	b.Helper()
	rng := rand.NewChaCha8([32]byte{byte(seed)})
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	data := make([]byte, 256<<10)
	for i := range 200 {
		if i%20 == 0 {
			tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("d%d/", i/20), Typeflag: tar.TypeDir, Mode: 0o755})
		}
		rng.Read(data)
		if err := tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("d%d/f%d", i/20, i), Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(data))}); err != nil {
			b.Fatal(err)
		}
		tw.Write(data)
	}
	tw.Close()
	return buf.Bytes()
}

// BenchmarkUnpack measures Unpack of a 50 MB layer as a base layer and on
// top of a 50 MB parent (which the copy driver must copy first), per
// driver, with and without the syncfs before commit.
func BenchmarkUnpack(b *testing.B) {
	needRoot(b)
	base, top := benchLayer(b, 1), benchLayer(b, 2)
	for _, drv := range []string{DriverOverlay, DriverCopy, DriverBtrfs} {
		for _, sync := range []bool{false, true} {
			name := drv
			if sync {
				name += "-sync"
			}
			b.Run(name, func(b *testing.B) {
				dir := b.TempDir()
				if drv == DriverBtrfs {
					dir = btrfsDir(b, "8G") // deleted subvolumes free their space lazily
				}
				opts := []Option{WithDriver(drv)}
				if !sync {
					opts = append(opts, WithoutSync())
				}
				s, err := Open(filepath.Join(dir, "store"), opts...)
				if err != nil {
					b.Fatal(err)
				}
				ctx := context.Background()
				if _, err := s.Unpack(ctx, chainID("parent"), "", bytes.NewReader(base)); err != nil {
					b.Fatal(err)
				}
				unix.Sync()
				for _, onParent := range []bool{false, true} {
					parent, what := "", "base"
					if onParent {
						parent, what = chainID("parent"), "on-parent"
					}
					b.Run(what, func(b *testing.B) {
						b.SetBytes(int64(len(top)))
						for i := 0; b.Loop(); i++ {
							id := chainID(fmt.Sprintf("top-%s-%d", what, i))
							if _, err := s.Unpack(ctx, id, parent, bytes.NewReader(top)); err != nil {
								b.Fatal(err)
							}
							b.StopTimer()
							if err := s.Remove(id); err != nil {
								b.Fatal(err)
							}
							unix.Sync() // start each round with no dirty pages
							b.StartTimer()
						}
					})
				}
			})
		}
	}
}
