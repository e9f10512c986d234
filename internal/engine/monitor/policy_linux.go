package monitor

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// PolicyFile, beside the exit record, holds the restart policy `cove
// update --restart` set ("NAME MAX"); the supervisor reads it at each exit,
// so an update reaches a running container's supervisor.
const PolicyFile = "restart-policy"

// refreshPolicy takes the restart policy from PolicyFile, if there is one.
func (m *monitor) refreshPolicy() {
	b, err := os.ReadFile(filepath.Join(filepath.Dir(m.cfg.ExitPath), PolicyFile))
	if err != nil {
		return
	}
	name, max, _ := strings.Cut(strings.TrimSpace(string(b)), " ")
	n, err := strconv.Atoi(max)
	if name == "" || err != nil {
		return
	}
	m.cfg.Restart, m.cfg.MaxRetries = name, n
}
