package network

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"cove/internal/flock"
)

// state is the whole persisted state: one JSON document.
type state struct {
	Networks    map[string]*Network `json:"networks"`
	Attachments []*Attachment       `json:"attachments"`
}

const stateFile = "state.json"

// lock takes the exclusive flock on dir/lock; the returned function releases it.
func (m *Manager) lock() (func(), error) {
	release, err := flock.Lock(filepath.Join(m.dir, "lock"), flock.Exclusive)
	if err != nil {
		return nil, fmt.Errorf("network state: %w", err)
	}
	return release, nil
}

// lockedState takes the lock and reads the state under it; release the
// lock with the returned function.
func (m *Manager) lockedState() (*state, func(), error) {
	unlock, err := m.lock()
	if err != nil {
		return nil, nil, err
	}
	st, err := m.load()
	if err != nil {
		unlock()
		return nil, nil, err
	}
	return st, unlock, nil
}

// load reads the state; a missing file is an empty state.
func (m *Manager) load() (*state, error) {
	st := &state{Networks: map[string]*Network{}}
	b, err := os.ReadFile(filepath.Join(m.dir, stateFile))
	if errors.Is(err, os.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read network state: %w", err)
	}
	if err := json.Unmarshal(b, st); err != nil {
		return nil, fmt.Errorf("parse network state %s: %w", filepath.Join(m.dir, stateFile), err)
	}
	if st.Networks == nil {
		st.Networks = map[string]*Network{}
	}
	return st, nil
}

// save writes the state atomically: a temporary file renamed over the old
// one. sync adds an fsync (for the final write of an operation; intermediate
// writes only need to survive a crash of the process, not of the machine).
func (m *Manager) save(st *state, sync bool) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("encode network state: %w", err)
	}
	tmp := filepath.Join(m.dir, stateFile+".tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("write network state: %w", err)
	}
	_, err = f.Write(b)
	if err == nil && sync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(m.dir, stateFile))
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write network state: %w", err)
	}
	return nil
}

// attachment returns the index of container id's attachment to network, or -1.
func (st *state) attachment(id, network string) int {
	for i, a := range st.Attachments {
		if a.ContainerID == id && a.Network == network {
			return i
		}
	}
	return -1
}

// remove drops attachment i.
func (st *state) remove(i int) {
	st.Attachments = append(st.Attachments[:i], st.Attachments[i+1:]...)
}
