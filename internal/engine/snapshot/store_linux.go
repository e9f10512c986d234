package snapshot

import (
	"context"
	"errors"
	"io"
)

var errTODO = errors.New("snapshot: not implemented yet")

// Store is a snapshot store in one directory. Its methods are safe for
// concurrent use by goroutines and by several processes sharing the
// directory.
type Store struct {
	dir    string
	driver string
	cfg    config
}

// Open opens (creating) the snapshot store under dir, picking a driver
// (overlay, btrfs, copy) the first time, and removes leftovers of
// interrupted unpacks (see Repair).
func Open(dir string, opts ...Option) (*Store, error) { return nil, errTODO }

// Driver returns the store's driver name.
func (s *Store) Driver() string { return s.driver }

// Has reports whether the committed snapshot chainID exists.
func (s *Store) Has(chainID string) bool { return false }

// Stat returns the committed snapshot chainID.
func (s *Store) Stat(chainID string) (Info, error) { return Info{}, errTODO }

// Unpack applies the uncompressed layer tar on top of parent ("" for a
// base layer) and commits it atomically as chainID. It is idempotent: when
// chainID exists it returns its size at once without reading layer. It
// returns the bytes of file content unpacked. On error nothing is
// committed and the partial unpack is removed.
func (s *Store) Unpack(ctx context.Context, chainID, parent string, layer io.Reader) (int64, error) {
	return 0, errTODO
}

// Remove deletes a committed snapshot. It fails with ErrInUse while a
// child snapshot or an active layer sits on it.
func (s *Store) Remove(chainID string) error { return errTODO }

// List lists the committed snapshots.
func (s *Store) List() ([]Info, error) { return nil, errTODO }

// Prepare creates the writable layer key (for example a container id) on
// top of the committed snapshot chainID ("" for an empty root).
func (s *Store) Prepare(key, chainID string, opts ...PrepareOption) error { return errTODO }

// Mounts returns the mounts that assemble the active layer key.
func (s *Store) Mounts(key string) ([]Mount, error) { return nil, errTODO }

// Mount mounts the active layer key on target (an existing directory).
func (s *Store) Mount(key, target string) error { return errTODO }

// Unmount unmounts what Mount mounted on target.
func (s *Store) Unmount(target string) error { return errTODO }

// RemoveActive deletes the active layer key; it fails with ErrInUse while
// it is mounted.
func (s *Store) RemoveActive(key string) error { return errTODO }

// Active returns the active layer key.
func (s *Store) Active(key string) (ActiveInfo, error) { return ActiveInfo{}, errTODO }

// ListActive lists the active layers.
func (s *Store) ListActive() ([]ActiveInfo, error) { return nil, errTODO }

// Usage returns the space the active layer key's own files take.
func (s *Store) Usage(key string) (Usage, error) { return Usage{}, errTODO }

// Repair removes leftovers of interrupted unpacks, prepares and removals
// (never used, as they were never renamed into place) and lists the
// active layers so the engine can remove those no container owns.
func (s *Store) Repair() (RepairReport, error) { return RepairReport{}, errTODO }

// Close releases the store. It does not unmount anything.
func (s *Store) Close() error { return nil }
