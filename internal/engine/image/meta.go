package image

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Record is what the metadata database holds for one image name.
type Record struct {
	Name      string    `json:"name"`             // normalized repository:tag (or @digest)
	Digest    string    `json:"digest"`           // manifest digest
	MediaType string    `json:"mediaType"`        // manifest media type
	Size      int64     `json:"size"`             // manifest size
	Config    string    `json:"config"`           // config digest: the image ID
	Index     string    `json:"index,omitempty"`  // digest of the index the manifest was picked from
	Source    string    `json:"source,omitempty"` // where it came from: registry ref, archive, import
	Created   time.Time `json:"created"`          // when this name was stored
}

// RepoDigest is the digest a registry knows the image by (the index if there was one).
func (r Record) RepoDigest() string {
	if r.Index != "" {
		return r.Index
	}
	return r.Digest
}

var bucketImages = []byte("images")

// meta is the bbolt database at <root>/meta.db. It is opened for each
// transaction only, because bbolt holds an exclusive file lock while open:
// this way several cove processes share one store, each waiting its turn.
type meta struct {
	path string
}

const metaLockTimeout = time.Minute

func (m *meta) update(fn func(b *bolt.Bucket) error) error {
	db, err := bolt.Open(m.path, 0o600, &bolt.Options{Timeout: metaLockTimeout})
	if err != nil {
		return fmt.Errorf("open %s: %w", m.path, err)
	}
	defer db.Close()
	return db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketImages)
		if err != nil {
			return err
		}
		return fn(b)
	})
}

func (m *meta) view(fn func(b *bolt.Bucket) error) error {
	if _, err := os.Stat(m.path); errors.Is(err, fs.ErrNotExist) {
		return fn(nil)
	}
	db, err := bolt.Open(m.path, 0o600, &bolt.Options{Timeout: metaLockTimeout, ReadOnly: true})
	if err != nil {
		return fmt.Errorf("open %s: %w", m.path, err)
	}
	defer db.Close()
	return db.View(func(tx *bolt.Tx) error { return fn(tx.Bucket(bucketImages)) })
}

func (m *meta) put(recs ...Record) error {
	return m.update(func(b *bolt.Bucket) error {
		for _, r := range recs {
			v, err := json.Marshal(r)
			if err != nil {
				return err
			}
			if err := b.Put([]byte(r.Name), v); err != nil {
				return err
			}
		}
		return nil
	})
}

func (m *meta) get(name string) (Record, bool, error) {
	var r Record
	var ok bool
	err := m.view(func(b *bolt.Bucket) error {
		if b == nil {
			return nil
		}
		v := b.Get([]byte(name))
		if v == nil {
			return nil
		}
		ok = true
		return json.Unmarshal(v, &r)
	})
	return r, ok, err
}

func (m *meta) list() ([]Record, error) {
	var recs []Record
	err := m.view(func(b *bolt.Bucket) error {
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			var r Record
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("image record %q: %w", k, err)
			}
			recs = append(recs, r)
			return nil
		})
	})
	sort.Slice(recs, func(i, j int) bool { return recs[i].Name < recs[j].Name })
	return recs, err
}

// del removes names; those that do not exist are ignored.
func (m *meta) del(names ...string) error {
	return m.update(func(b *bolt.Bucket) error {
		for _, n := range names {
			if err := b.Delete([]byte(n)); err != nil {
				return err
			}
		}
		return nil
	})
}
