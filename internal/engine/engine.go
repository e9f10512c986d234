// Package engine ties cove's stores together into containers: it resolves
// images, prepares their snapshots, generates OCI specs, starts each
// container under its own supervisor (cove-monitor) through the runtime's
// runc command line, and answers for their state. It holds no daemon:
// every cove command opens an Engine, works on the shared store under
// flock(2), and exits; what outlives a command is the supervisor.
//
// Layout: containers under <root>/containers (package container), image
// metadata and content under <root> (package image), snapshots under
// <root>/snapshots; runtime state under <runroot> (default /run/cove):
// <runroot>/<id>/ is a running container's bundle (config.json, rootfs,
// hosts files), supervisor pid and attach socket, and
// <runroot>/runtimes/<name> the runtime's --root. A wiped runroot (a
// reboot) means every container has exited.
package engine

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"

	"cove/internal/engine/container"
	"cove/internal/engine/image"
	"cove/internal/engine/network"
	"cove/internal/engine/snapshot"
)

// Config says where an Engine keeps things and which programs it runs.
type Config struct {
	Root    string // store directory (default /var/lib/cove)
	RunRoot string // runtime state (default /run/cove)
	// Runtime is the default runtime: cove-runc, runc, crun or a path.
	Runtime string
	// Monitor is the cove-monitor binary; "" looks next to the running
	// executable, then in PATH.
	Monitor string
	// Cove is the cove binary the supervisor calls back for cleanup; ""
	// means the running executable.
	Cove string
}

// Engine is cove's container engine over one store.
type Engine struct {
	cfg        Config
	Containers *container.Store

	mu     sync.Mutex
	snaps  *snapshot.Store
	images *image.Store
	nets   *network.Manager
}

// ErrNotRunning and friends are state errors callers may test for.
var (
	ErrNotRunning = errors.New("container is not running")
	ErrRunning    = errors.New("container is running")
)

// New opens the engine's stores (images and snapshots lazily).
func New(cfg Config) (*Engine, error) {
	if cfg.Root == "" {
		cfg.Root = "/var/lib/cove"
	}
	if cfg.RunRoot == "" {
		cfg.RunRoot = "/run/cove"
	}
	if cfg.Runtime == "" {
		cfg.Runtime = "cove-runc"
	}
	if cfg.Cove == "" {
		if exe, err := os.Executable(); err == nil {
			cfg.Cove = exe
		}
	}
	cs, err := container.Open(filepath.Join(cfg.Root, "containers"))
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.RunRoot, 0o700); err != nil {
		return nil, fmt.Errorf("create %s: %w", cfg.RunRoot, err)
	}
	return &Engine{cfg: cfg, Containers: cs}, nil
}

// Root returns the store directory.
func (e *Engine) Root() string { return e.cfg.Root }

// Snapshots opens (once) the snapshot store.
func (e *Engine) Snapshots() (*snapshot.Store, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.snaps == nil {
		s, err := snapshot.Open(filepath.Join(e.cfg.Root, "snapshots"))
		if err != nil {
			return nil, fmt.Errorf("open snapshots in %s: %w", e.cfg.Root, err)
		}
		e.snaps = s
	}
	return e.snaps, nil
}

// Images opens (once) the image store.
func (e *Engine) Images() (*image.Store, error) {
	snaps, err := e.Snapshots()
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.images == nil {
		s, err := image.Open(e.cfg.Root, snapParents{snaps})
		if err != nil {
			return nil, err
		}
		s.InUse = e.imageUsers
		e.images = s
	}
	return e.images, nil
}

// snapParents adapts the snapshot store to image.Snapshotter.
type snapParents struct{ *snapshot.Store }

func (a snapParents) Parents() (map[string]string, error) {
	infos, err := a.List()
	if err != nil {
		return nil, err
	}
	m := make(map[string]string, len(infos))
	for _, in := range infos {
		m[in.ChainID] = in.Parent
	}
	return m, nil
}

func (e *Engine) imageUsers(imageID string) ([]string, error) {
	recs, err := e.Containers.List()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, r := range recs {
		if r.ImageID == imageID {
			out = append(out, r.ID)
		}
	}
	return out, nil
}

// RunDir is container id's runtime directory.
func (e *Engine) RunDir(id string) string { return filepath.Join(e.cfg.RunRoot, id) }

// RuntimePath resolves a runtime name to its binary: a path as given;
// cove-runc next to the running executable first; then PATH.
func (e *Engine) RuntimePath(name string) (string, error) {
	if name == "" {
		name = e.cfg.Runtime
	}
	if strings.Contains(name, "/") {
		abs, err := filepath.Abs(name)
		if err != nil {
			return "", err
		}
		if _, err := os.Stat(abs); err != nil {
			return "", fmt.Errorf("runtime %s: %w", name, err)
		}
		return abs, nil
	}
	if exe, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(exe), name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, nil
		}
	}
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("runtime %s not found next to cove or in PATH", name)
	}
	return filepath.Abs(p)
}

// RuntimeRoot is the --root given to a runtime binary: one per binary
// name, as runtimes' state formats differ.
func (e *Engine) RuntimeRoot(runtimePath string) string {
	return filepath.Join(e.cfg.RunRoot, "runtimes", filepath.Base(runtimePath))
}

func (e *Engine) monitorPath() (string, error) {
	if e.cfg.Monitor != "" {
		return e.cfg.Monitor, nil
	}
	if exe, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(exe), "cove-monitor")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	p, err := exec.LookPath("cove-monitor")
	if err != nil {
		return "", fmt.Errorf("cove-monitor not found next to cove or in PATH")
	}
	return p, nil
}
