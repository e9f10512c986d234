package snapshot

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
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
				dir := benchDir(b)
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

// BenchmarkUnpackSmallFiles measures per-entry cost: 10000 files of 512
// bytes in 100 directories (a distribution base layer has about as many).
func BenchmarkUnpackSmallFiles(b *testing.B) {
	needRoot(b)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	body := bytes.Repeat([]byte("x"), 512)
	for i := range 10000 {
		if i%100 == 0 {
			tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("usr/share/d%d/", i/100), Typeflag: tar.TypeDir, Mode: 0o755})
		}
		tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("usr/share/d%d/f%d", i/100, i), Typeflag: tar.TypeReg, Mode: 0o644, Size: 512})
		tw.Write(body)
	}
	tw.Close()
	for _, drv := range []string{DriverOverlay, DriverCopy} {
		b.Run(drv, func(b *testing.B) {
			s, err := Open(filepath.Join(benchDir(b), "store"), WithDriver(drv), WithoutSync())
			if err != nil {
				b.Fatal(err)
			}
			for i := 0; b.Loop(); i++ {
				id := chainID(fmt.Sprintf("small-%d", i))
				if _, err := s.Unpack(context.Background(), id, "", bytes.NewReader(buf.Bytes())); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if err := s.Remove(id); err != nil {
					b.Fatal(err)
				}
				unix.Sync()
				b.StartTimer()
			}
			b.ReportMetric(float64(10000*b.N)/b.Elapsed().Seconds(), "files/s")
		})
	}
}

// benchDir is where benchmark stores go: $COVE_BENCH_DIR (for example
// /dev/shm, to take the disk out of the figures) or a temporary directory.
func benchDir(b *testing.B) string {
	if d := os.Getenv("COVE_BENCH_DIR"); d != "" {
		p, err := os.MkdirTemp(d, "snapbench-")
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { os.RemoveAll(p) })
		return p
	}
	return b.TempDir()
}
