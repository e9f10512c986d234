// Package runtime is cove's OCI runtime library: it creates, starts, signals,
// inspects and deletes containers described by an OCI bundle. cmd/cove-runc
// is a thin command line over it.
//
// A container is a directory under the runtime root holding state.json
// (written atomically), a lock file, and, between create and start, the
// exec.sock path socket the waiting init listens on.
package runtime

import "errors"

// Container status values, as in the OCI runtime spec (plus paused).
const (
	StatusCreating = "creating"
	StatusCreated  = "created"
	StatusRunning  = "running"
	StatusStopped  = "stopped"
	StatusPaused   = "paused"
)

// Sentinel errors, checked with errors.Is.
var (
	ErrNotExist = errors.New("container does not exist")
	ErrExist    = errors.New("container already exists")
)
