package image

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Compression of a layer blob.
type compression int

const (
	uncompressed compression = iota
	compGzip
	compZstd
)

// decompressor maps a layer media type to its compression; foreign and
// unknown layer types are refused.
func decompressor(mt string) (compression, error) {
	switch mt {
	case MediaTypeOCILayer, "application/vnd.oci.image.layer.nondistributable.v1.tar":
		return uncompressed, nil
	case MediaTypeOCILayerGzip, MediaTypeDockerLayer, "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip":
		return compGzip, nil
	case MediaTypeOCILayerZstd, "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd":
		return compZstd, nil
	case MediaTypeDockerForeign:
		return 0, fmt.Errorf("foreign layers (%s) are not supported", mt)
	}
	return 0, fmt.Errorf("unsupported layer media type %q", mt)
}

// sniff detects compression from a blob's first bytes.
func sniff(b []byte) compression {
	switch {
	case len(b) >= 2 && b[0] == 0x1f && b[1] == 0x8b:
		return compGzip
	case len(b) >= 4 && b[0] == 0x28 && b[1] == 0xb5 && b[2] == 0x2f && b[3] == 0xfd:
		return compZstd
	}
	return uncompressed
}

// decompress returns the uncompressed tar stream of a layer blob.
func decompress(c compression, r io.Reader) (io.ReadCloser, error) {
	switch c {
	case compGzip:
		zr, err := gzip.NewReader(r)
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		return zr, nil
	case compZstd:
		zr, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, fmt.Errorf("zstd: %w", err)
		}
		return zr.IOReadCloser(), nil
	}
	return io.NopCloser(r), nil
}

// diffVerifier hashes the uncompressed stream and turns EOF into an error
// when it does not match the diff ID the config promises.
type diffVerifier struct {
	r        io.Reader
	h        hash.Hash
	want     string
	verified bool
}

func (v *diffVerifier) Read(p []byte) (int, error) {
	n, err := v.r.Read(p)
	v.h.Write(p[:n])
	if err == io.EOF {
		if got := "sha256:" + hex.EncodeToString(v.h.Sum(nil)); got != v.want {
			return n, fmt.Errorf("diff ID mismatch: uncompressed layer hashes to %s, config says %s", got, v.want)
		}
		v.verified = true
	}
	return n, err
}

// unpackLayer decompresses r, verifies it against diffID and unpacks it as
// snapshot chainID on parent. A snapshot whose stream turns out to be bad
// after the unpacker stopped reading (trailing data) is removed again.
func (s *Store) unpackLayer(ctx context.Context, l ocispec.Descriptor, diffID, chainID, parent string, r io.Reader) error {
	c, err := decompressor(l.MediaType)
	if err != nil {
		return err
	}
	br := bufio.NewReaderSize(r, 1<<20)
	if head, _ := br.Peek(4); sniff(head) != c && c != uncompressed {
		return fmt.Errorf("media type %s, but the blob is not compressed that way", l.MediaType)
	}
	zr, err := decompress(c, br)
	if err != nil {
		return err
	}
	defer zr.Close()
	v := &diffVerifier{r: zr, h: sha256.New(), want: diffID}
	if _, err := s.snapshots.Unpack(ctx, chainID, parent, v); err != nil {
		return fmt.Errorf("unpack: %w", err)
	}
	if _, err := io.Copy(io.Discard, v); err != nil || !v.verified {
		if rerr := s.snapshots.Remove(chainID); rerr != nil {
			return fmt.Errorf("%w (and removing the bad snapshot failed: %v)", err, rerr)
		}
		if err == nil {
			err = fmt.Errorf("layer stream not verified")
		}
		return err
	}
	return nil
}
