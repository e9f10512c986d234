package image

import (
	"archive/tar"
	"context"
	"errors"
	"io"
	"sync"
)

// fakeSnaps is an in-memory Snapshotter for unit tests. Like a real tar
// unpacker it stops reading at the end-of-archive marker, so it also tests
// that Pull verifies what the unpacker did not read.
type fakeSnaps struct {
	mu      sync.Mutex
	files   map[string][]string // chain ID -> file names
	parents map[string]string
	inUse   map[string]bool
}

func newFakeSnaps() *fakeSnaps {
	return &fakeSnaps{files: map[string][]string{}, parents: map[string]string{}, inUse: map[string]bool{}}
}

func (f *fakeSnaps) Has(c string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.files[c]
	return ok
}

func (f *fakeSnaps) Unpack(ctx context.Context, c, parent string, r io.Reader) (int64, error) {
	if f.Has(c) {
		return 0, nil
	}
	if parent != "" && !f.Has(parent) {
		return 0, errors.New("fake: parent missing")
	}
	tr := tar.NewReader(r)
	var names []string
	var size int64
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return 0, err
		}
		n, err := io.Copy(io.Discard, tr)
		if err != nil {
			return 0, err
		}
		size += n
		names = append(names, h.Name)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.files[c], f.parents[c] = names, parent
	return size, nil
}

func (f *fakeSnaps) Remove(c string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.inUse[c] {
		return errors.New("fake: in use")
	}
	for _, p := range f.parents {
		if p == c {
			return errors.New("fake: has children")
		}
	}
	delete(f.files, c)
	delete(f.parents, c)
	return nil
}

func (f *fakeSnaps) Parents() (map[string]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m := map[string]string{}
	for k, v := range f.parents {
		m[k] = v
	}
	return m, nil
}

func (f *fakeSnaps) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.files)
}
