package runtime

import (
	"os"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"
)

var sealMethods = []struct {
	name string
	seal func() (*os.File, error)
}{
	{sealOverlay, overlaySelf},
	{sealMemfd, memfdSelf},
}

// TestSealedSelfNotWritable checks both methods: the handle is the running
// binary, and neither it nor a reopen through /proc/self/fd can write.
func TestSealedSelfNotWritable(t *testing.T) {
	want, err := os.ReadFile("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range sealMethods {
		t.Run(m.name, func(t *testing.T) {
			f, err := m.seal()
			if err != nil {
				if m.name == sealOverlay && os.Geteuid() != 0 {
					t.Skip("overlayfs needs root:", err)
				}
				t.Fatal(err)
			}
			defer f.Close()
			var st unix.Stat_t
			if err := unix.Fstat(int(f.Fd()), &st); err != nil || st.Size != int64(len(want)) {
				t.Fatalf("sealed handle size %d (%v), want %d", st.Size, err, len(want))
			}
			path := "/proc/self/fd/" + strconv.Itoa(int(f.Fd()))
			for _, flag := range []int{unix.O_WRONLY, unix.O_RDWR, unix.O_WRONLY | unix.O_TRUNC} {
				w, err := os.OpenFile(path, flag, 0)
				if err == nil {
					_, err = w.Write([]byte("x"))
					w.Close()
				}
				if err == nil {
					t.Errorf("open %#x and write through %s: no error", flag, path)
				}
			}
			if err := unix.Ftruncate(int(f.Fd()), 0); err == nil {
				t.Error("ftruncate of the sealed binary worked")
			}
			got, err := os.ReadFile(path)
			if err != nil || string(got) != string(want) {
				t.Errorf("sealed content differs from the binary (%v)", err)
			}
		})
	}
}

// BenchmarkSealedSelf measures one sealing per spawn with each method:
// go test -run '^$' -bench SealedSelf ./internal/runtime/
func BenchmarkSealedSelf(b *testing.B) {
	for _, m := range sealMethods {
		b.Run(m.name, func(b *testing.B) {
			f, err := m.seal()
			if err != nil {
				b.Skip(err)
			}
			f.Close()
			b.ReportAllocs()
			for b.Loop() {
				f, err := m.seal()
				if err != nil {
					b.Fatal(err)
				}
				f.Close()
			}
		})
	}
}
