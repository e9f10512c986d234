package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
)

// fuzzParts are the name components fuzzed layers are built from: enough
// to climb out, point symlinks at the canary next to the root, and white
// things out.
var fuzzParts = []string{"a", "b", "..", ".", "", "evil", "canary", "passwd", "etc", ".wh.a", ".wh.canary", ".wh..wh..opq", ".wh..."}

// fuzzLayer decodes data into a tar: each entry takes 4 bytes (type, two
// name components, a link target form).
func fuzzLayer(data []byte) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	part := func(b byte) string { return fuzzParts[int(b)%len(fuzzParts)] }
	for len(data) >= 4 {
		typ, n1, n2, l := data[0], data[1], data[2], data[3]
		data = data[4:]
		name := part(n1) + "/" + part(n2)
		if n1&0x80 != 0 {
			name = "/" + name
		}
		link := part(l) + "/" + part(l>>4)
		switch l % 4 {
		case 1:
			link = "/" + link
		case 2:
			link = "../../" + link
		case 3:
			link = "../canary/passwd"
		}
		h := &tar.Header{Name: name, Mode: 0o755, Linkname: link}
		switch typ % 5 {
		case 0:
			h.Typeflag, h.Size = tar.TypeReg, 1
		case 1:
			h.Typeflag = tar.TypeDir
		case 2:
			h.Typeflag = tar.TypeSymlink
		case 3:
			h.Typeflag = tar.TypeLink
		case 4:
			h.Typeflag = tar.TypeFifo
		}
		if tw.WriteHeader(h) != nil {
			continue
		}
		if h.Size == 1 {
			tw.Write([]byte("x"))
		}
	}
	tw.Close()
	return buf.Bytes()
}

// FuzzApply unpacks generated hostile layers: whatever they hold, nothing
// outside the root may change (sandbox's check), and failures are *Error.
func FuzzApply(f *testing.F) {
	f.Add([]byte{2, 5, 4, 3, 0, 5, 7, 0})              // evil -> ../canary/passwd, then write evil/passwd
	f.Add([]byte{2, 5, 0, 2, 0, 5, 6, 0, 4, 5, 11, 0}) // symlink out, file and opaque through it
	f.Add([]byte{3, 0, 1, 3, 3, 0, 1, 1})              // hard links out of the root
	f.Add([]byte{0, 2, 2, 0, 0, 0x82, 8, 0})           // dotdot names
	f.Fuzz(func(t *testing.T, data []byte) {
		root, check := sandbox(t)
		layer := fuzzLayer(data)
		for _, mode := range []WhiteoutMode{WhiteoutDelete, WhiteoutOverlay} {
			if mode == WhiteoutOverlay && !rootUser() {
				continue
			}
			_, err := Apply(context.Background(), root, bytes.NewReader(layer), Options{Layer: "fuzz", Whiteouts: mode, MaxEntrySize: 1 << 20})
			if err != nil && !strings.HasPrefix(err.Error(), "unpack layer fuzz") {
				t.Errorf("error without layer: %v", err)
			}
			check()
		}
	})
}

func rootUser() bool { return os.Geteuid() == 0 }
