package runtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"cove/internal/flock"
	"cove/internal/runtime/bundle"
)

const (
	stateFile   = "state.json"
	execSock    = "exec.sock"
	lockFile    = "lock"
	stateDirMod = 0o700
)

// State is what the runtime records about one container.
type State struct {
	ID          string            `json:"id"`
	Pid         int               `json:"pid"`
	PidStart    uint64            `json:"pidStart"`
	Bundle      string            `json:"bundle"`
	Rootfs      string            `json:"rootfs"`
	Created     time.Time         `json:"created"`
	Owner       string            `json:"owner"`
	Annotations map[string]string `json:"annotations,omitempty"`
	// Ready is set once create finished: the init waits for start. Whether
	// it has started is derived: the exec socket is gone.
	Ready       bool              `json:"ready"`
	CgroupPaths map[string]string `json:"cgroupPaths,omitempty"`
	Spec        *specs.Spec       `json:"spec"`

	dir string
}

// Dir is the container's state directory.
func (s *State) Dir() string { return s.dir }

// Status derives the container's current status from the kernel: the init
// process's liveness (by pid and start time) and the exec socket.
func (s *State) Status() string {
	if s.Pid == 0 {
		if !s.Ready {
			return StatusCreating
		}
		return StatusStopped
	}
	start, zombie, err := procStart(s.Pid)
	if err != nil || zombie || start != s.PidStart {
		return StatusStopped
	}
	if !s.Ready {
		return StatusCreating
	}
	if paused(s.CgroupPaths) {
		return StatusPaused
	}
	if _, err := os.Lstat(filepath.Join(s.dir, execSock)); err == nil {
		return StatusCreated
	}
	return StatusRunning
}

// OCI returns the state in the runtime-spec form that `state` prints.
func (s *State) OCI() specs.State {
	return specs.State{
		Version:     specs.Version,
		ID:          s.ID,
		Status:      specs.ContainerState(s.Status()),
		Pid:         s.Pid,
		Bundle:      s.Bundle,
		Annotations: s.Annotations,
	}
}

func paused(paths map[string]string) bool {
	if p, ok := paths["freezer"]; ok {
		b, err := os.ReadFile(filepath.Join(p, "freezer.state"))
		return err == nil && strings.TrimSpace(string(b)) == "FROZEN"
	}
	if p, ok := paths["unified"]; ok {
		b, err := os.ReadFile(filepath.Join(p, "cgroup.freeze"))
		return err == nil && strings.TrimSpace(string(b)) == "1"
	}
	return false
}

// procStart returns the start time (in clock ticks since boot) of pid and
// whether it is a zombie, from /proc/<pid>/stat.
func procStart(pid int) (uint64, bool, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false, err
	}
	// The command name may hold spaces and parentheses: split after the last ')'.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, false, fmt.Errorf("parse /proc/%d/stat", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return 0, false, fmt.Errorf("parse /proc/%d/stat", pid)
	}
	start, err := strconv.ParseUint(f[19], 10, 64)
	return start, f[0] == "Z" || f[0] == "X", err
}

// Store is a runtime root directory holding one directory per container.
type Store struct {
	Root string
}

func (st *Store) dir(id string) string { return filepath.Join(st.Root, id) }

// lock takes an exclusive lock on the container's lock file. The returned
// function releases it.
func lock(dir string) (func(), error) {
	release, err := flock.Lock(filepath.Join(dir, lockFile), flock.Exclusive)
	if errors.Is(err, unix.ENOENT) {
		return nil, ErrNotExist // the container directory is gone
	}
	return release, err
}

// newContainer makes the state directory of a new container and locks it.
// An existing directory means the id is taken.
func (st *Store) newContainer(id string) (string, func(), error) {
	if err := bundle.ValidateID(id); err != nil {
		return "", nil, err
	}
	if err := os.MkdirAll(st.Root, stateDirMod); err != nil {
		return "", nil, fmt.Errorf("create runtime root: %w", err)
	}
	dir := st.dir(id)
	if err := os.Mkdir(dir, stateDirMod); err != nil {
		if errors.Is(err, os.ErrExist) {
			return "", nil, fmt.Errorf("container %q: %w", id, ErrExist)
		}
		return "", nil, fmt.Errorf("create state directory: %w", err)
	}
	unlock, err := lock(dir)
	if err != nil {
		os.RemoveAll(dir)
		return "", nil, err
	}
	return dir, unlock, nil
}

// Load reads the state of container id without locking it.
func (st *Store) Load(id string) (*State, error) {
	if err := bundle.ValidateID(id); err != nil {
		return nil, err
	}
	dir := st.dir(id)
	b, err := os.ReadFile(filepath.Join(dir, stateFile))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			if _, serr := os.Stat(dir); serr == nil {
				// Directory without state: a create that died before
				// writing anything. Report it so delete can clean it.
				return &State{ID: id, dir: dir}, nil
			}
			return nil, fmt.Errorf("container %q: %w", id, ErrNotExist)
		}
		return nil, fmt.Errorf("read state of %q: %w", id, err)
	}
	s := &State{dir: dir}
	if err := json.Unmarshal(b, s); err != nil {
		return nil, fmt.Errorf("parse state of %q: %w", id, err)
	}
	return s, nil
}

// lockLoad locks container id and loads its state.
func (st *Store) lockLoad(id string) (*State, func(), error) {
	if err := bundle.ValidateID(id); err != nil {
		return nil, nil, err
	}
	unlock, err := lock(st.dir(id))
	if err != nil {
		if errors.Is(err, ErrNotExist) {
			return nil, nil, fmt.Errorf("container %q: %w", id, ErrNotExist)
		}
		return nil, nil, err
	}
	s, err := st.Load(id)
	if err != nil {
		unlock()
		return nil, nil, err
	}
	return s, unlock, nil
}

// save writes the state atomically: a temporary file, then rename. Without
// fsync: the state describes processes and cgroups that a reboot ends, so
// only atomicity against a crashing writer matters, which the rename gives
// (fsync cost 0.5-0.7 ms per save where the root is on disk, three saves
// per create).
func (s *State) save() error {
	b, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("encode state: %w", err)
	}
	return replaceFile(filepath.Join(s.dir, stateFile), b, 0o600, false)
}

// writeFileAtomic replaces path with data so that readers see the old or the
// new content, never a part, and the new content is on disk on return.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	return replaceFile(path, data, mode, true)
}

// replaceFile replaces path with data through a temporary file and rename;
// durable also fsyncs the data before the rename.
func replaceFile(path string, data []byte, mode os.FileMode, durable bool) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(mode)
	}
	if err == nil && durable {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// List returns the states of every container in the store, sorted by id.
func (st *Store) List() ([]*State, error) {
	ents, err := os.ReadDir(st.Root)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("list %s: %w", st.Root, err)
	}
	var out []*State
	for _, e := range ents {
		if !e.IsDir() || bundle.ValidateID(e.Name()) != nil {
			continue
		}
		s, err := st.Load(e.Name())
		if err != nil {
			continue
		}
		out = append(out, s)
	}
	return out, nil
}
