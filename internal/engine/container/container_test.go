package container

import (
	"errors"
	"sync"
	"testing"
	"time"
)

func TestCreateNameRace(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- s.Create(&Record{ID: NewID(), Name: "web", Created: time.Now()})
		}()
	}
	wg.Wait()
	close(errs)
	ok := 0
	for err := range errs {
		if err == nil {
			ok++
		} else if !errors.Is(err, ErrNameInUse) {
			t.Errorf("unexpected error: %v", err)
		}
	}
	if ok != 1 {
		t.Fatalf("%d creates with one name succeeded, want 1", ok)
	}
	ids, _ := s.IDs()
	if len(ids) != 1 {
		t.Fatalf("%d records, want 1", len(ids))
	}
}

func TestLookup(t *testing.T) {
	s, _ := Open(t.TempDir())
	a := &Record{ID: "ab" + NewID()[2:], Name: "alpha"}
	b := &Record{ID: "ac" + NewID()[2:], Name: "beta"}
	for _, r := range []*Record{a, b} {
		if err := s.Create(r); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		arg  string
		want string
		err  error
	}{
		{a.ID, a.ID, nil},
		{"alpha", a.ID, nil},
		{"ab", a.ID, nil},
		{"ac", b.ID, nil},
		{"a", "", ErrAmbiguous},
		{"ff", "", ErrNotFound},
		{"gamma", "", ErrNotFound},
		{"", "", ErrNotFound},
	} {
		r, err := s.Lookup(c.arg)
		if c.err != nil {
			if !errors.Is(err, c.err) {
				t.Errorf("Lookup(%q): %v, want %v", c.arg, err, c.err)
			}
			continue
		}
		if err != nil || r.ID != c.want {
			t.Errorf("Lookup(%q) = %v, %v; want %s", c.arg, r, err, c.want)
		}
	}
}

func TestRenameAndRemove(t *testing.T) {
	s, _ := Open(t.TempDir())
	a := &Record{ID: NewID(), Name: "one"}
	b := &Record{ID: NewID(), Name: "two"}
	s.Create(a)
	s.Create(b)
	if err := s.Rename(a, "two"); !errors.Is(err, ErrNameInUse) {
		t.Fatalf("rename onto a used name: %v", err)
	}
	if err := s.Rename(a, "three"); err != nil {
		t.Fatal(err)
	}
	if err := s.Create(&Record{ID: NewID(), Name: "one"}); err != nil {
		t.Fatalf("old name not released: %v", err)
	}
	if err := s.Remove(b); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Lookup("two"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("removed record still found: %v", err)
	}
	if err := s.Create(&Record{ID: NewID(), Name: "bad/name"}); err == nil {
		t.Fatal("invalid name accepted")
	}
	dirs, names, err := s.Leftovers()
	if err != nil || len(dirs) != 0 || len(names) != 0 {
		t.Fatalf("leftovers in a clean store: %v %v %v", dirs, names, err)
	}
}
