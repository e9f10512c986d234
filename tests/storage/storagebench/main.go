// Command storagebench measures the quota drivers for bench/storage.sh:
// write throughput of dd (1 MiB blocks, conv=fsync) into a container layer
// mounted as an unquota'd overlay, an overlay whose upper is a loop-mounted
// ext4 image, overlays on btrfs without and with a qgroup limit, and a
// btrfs-driver layer with a qgroup limit; and the time to Prepare (and
// RemoveActive) a layer per driver. Everything lives under -work and is
// unmounted, detached and removed at exit.
//
//	storagebench -work DIR [-mib 256] [-rounds 3] [-prepare 10]
package main

import (
	"archive/tar"
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"cove/internal/engine/quota"
	"cove/internal/engine/snapshot"
)

const base = "sha256:0000000000000000000000000000000000000000000000000000000000000001"

type target struct {
	ref   int // index of the unquota'd layer on the same kind of filesystem
	name  string
	store *snapshot.Store
	opts  []snapshot.PrepareOption
	mnt   string
}

var cleanups []func()

func cleanup() {
	for i := len(cleanups) - 1; i >= 0; i-- {
		cleanups[i]()
	}
	cleanups = nil
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "storagebench:", err)
	cleanup()
	os.Exit(1)
}

func main() {
	work := flag.String("work", "", "work directory (on the host filesystem)")
	mib := flag.Int("mib", 256, "MiB written per dd")
	rounds := flag.Int("rounds", 3, "dd rounds (targets alternate within a round)")
	prepN := flag.Int("prepare", 10, "layers prepared per driver")
	flag.Parse()
	if *work == "" {
		fatal(fmt.Errorf("-work is required"))
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	go func() { <-sig; cleanup(); os.Exit(130) }()
	defer cleanup()

	size := int64(*mib)*2<<20 + 64<<20
	plainBtrfs := btrfsMount(*work, "btrfs-plain", 2*size+(512<<20))
	qBtrfs := btrfsMount(*work, "btrfs-q", 3*size+(512<<20))
	limit := []snapshot.PrepareOption{snapshot.WithSizeLimit(size)}
	targets := []*target{
		{name: "overlay (ext4, no quota)", store: store(filepath.Join(*work, "ext4"), snapshot.DriverOverlay)},
		{name: "overlay + loop ext4 image", store: store(filepath.Join(*work, "ext4"), snapshot.DriverOverlay), opts: append(limit, snapshot.WithQuotaDriver(quota.Loop))},
		{ref: 2, name: "overlay on btrfs, no quota", store: store(filepath.Join(plainBtrfs, "s"), snapshot.DriverOverlay)},
		{ref: 2, name: "overlay + btrfs qgroup", store: store(filepath.Join(qBtrfs, "s"), snapshot.DriverOverlay), opts: append(limit, snapshot.WithQuotaDriver(quota.Btrfs))},
		{ref: 2, name: "btrfs subvolume + qgroup", store: store(filepath.Join(qBtrfs, "b"), snapshot.DriverBtrfs), opts: limit},
	}
	for i, t := range targets {
		key := "bench" + strconv.Itoa(i)
		if err := t.store.Prepare(key, base, t.opts...); err != nil {
			fatal(fmt.Errorf("%s: %w", t.name, err))
		}
		t.mnt = filepath.Join(*work, "mnt", key)
		if err := os.MkdirAll(t.mnt, 0o755); err != nil {
			fatal(err)
		}
		if err := t.store.Mount(key, t.mnt); err != nil {
			t.store.RemoveActive(key)
			fatal(fmt.Errorf("%s: %w", t.name, err))
		}
		s, mnt := t.store, t.mnt
		cleanups = append(cleanups, func() { s.Unmount(mnt); s.RemoveActive(key) })
	}

	speeds := make([][]float64, len(targets))
	for r := 0; r < *rounds; r++ {
		for i, t := range targets {
			speeds[i] = append(speeds[i], dd(filepath.Join(t.mnt, "f"), *mib))
		}
	}
	fmt.Printf("| layer | dd %d MiB, conv=fsync (median of %d) | vs unquota'd overlay on the same fs |\n|---|---|---|\n", *mib, *rounds)
	for i, t := range targets {
		m := median(speeds[i])
		fmt.Printf("| %s | %.0f MiB/s | %.2fx |\n", t.name, m, m/median(speeds[t.ref]))
	}

	fmt.Printf("\n| layer | Prepare (median of %d) | RemoveActive | vs unquota'd overlay on the same fs |\n|---|---|---|---|\n", *prepN)
	refPrep := map[int]float64{}
	for i, t := range targets {
		var prep, rm []float64
		for n := 0; n < *prepN; n++ {
			key := fmt.Sprintf("p%d-%d", i, n)
			t0 := time.Now()
			if err := t.store.Prepare(key, base, t.opts...); err != nil {
				fatal(fmt.Errorf("%s: %w", t.name, err))
			}
			t1 := time.Now()
			if err := t.store.RemoveActive(key); err != nil {
				fatal(fmt.Errorf("%s: %w", t.name, err))
			}
			prep = append(prep, ms(t1.Sub(t0)))
			rm = append(rm, ms(time.Since(t1)))
		}
		m := median(prep)
		refPrep[i] = m
		fmt.Printf("| %s | %.2f ms | %.2f ms | %.1fx |\n", t.name, m, median(rm), m/refPrep[t.ref])
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return s[len(s)/2]
}

// dd writes mib MiB of zeros to p with conv=fsync and returns MiB/s; the
// file is removed afterwards.
func dd(p string, mib int) float64 {
	t0 := time.Now()
	out, err := exec.Command("dd", "if=/dev/zero", "of="+p, "bs=1M", "count="+strconv.Itoa(mib), "conv=fsync").CombinedOutput()
	el := time.Since(t0)
	if err != nil {
		fatal(fmt.Errorf("dd %s: %v %s", p, err, out))
	}
	os.Remove(p)
	unix.Sync()
	return float64(mib) / el.Seconds()
}

// store opens a snapshot store with driver and unpacks a one-file base
// layer into it.
func store(dir, driver string) *snapshot.Store {
	s, err := snapshot.Open(dir, snapshot.WithDriver(driver))
	if err != nil {
		fatal(err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "etc/", Typeflag: tar.TypeDir, Mode: 0o755})
	tw.WriteHeader(&tar.Header{Name: "etc/hostname", Typeflag: tar.TypeReg, Mode: 0o644, Size: 5})
	tw.Write([]byte("base\n"))
	tw.Close()
	if _, err := s.Unpack(context.Background(), base, "", &buf); err != nil {
		fatal(err)
	}
	return s
}

// btrfsMount makes a sparse btrfs image of size bytes in work, attaches it
// to a loop device of its own (autoclear) and mounts it.
func btrfsMount(work, name string, size int64) string {
	img, mnt := filepath.Join(work, name+".img"), filepath.Join(work, name)
	if err := os.MkdirAll(mnt, 0o755); err != nil {
		fatal(err)
	}
	f, err := os.Create(img)
	if err != nil {
		fatal(err)
	}
	f.Truncate(size)
	f.Close()
	if out, err := exec.Command("mkfs.btrfs", "-q", img).CombinedOutput(); err != nil {
		fatal(fmt.Errorf("mkfs.btrfs: %v %s", err, out))
	}
	dev, lf, err := quota.AttachLoop(img, true)
	if err != nil {
		fatal(err)
	}
	defer lf.Close()
	if err := unix.Mount(dev, mnt, "btrfs", 0, ""); err != nil {
		fatal(err)
	}
	cleanups = append(cleanups, func() {
		if err := unix.Unmount(mnt, 0); err != nil {
			unix.Unmount(mnt, unix.MNT_DETACH)
		}
	})
	return mnt
}
