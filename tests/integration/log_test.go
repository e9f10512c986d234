package integration

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func exitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	return -1
}

// TestJSONLog: errors are JSON lines with level and msg in the --log file,
// as containerd's shim reads them.
func TestJSONLog(t *testing.T) {
	e := newEnv(t, []string{"true"}, nil)
	logFile := filepath.Join(t.TempDir(), "log.json")
	out, err := e.runtime("--log", logFile, "--log-format", "json", "start", "nosuch")
	if exitCode(err) != 1 || !strings.Contains(out, "nosuch") {
		t.Fatalf("start of missing container: %v %q", err, out)
	}
	b, _ := os.ReadFile(logFile)
	var entry map[string]any
	if err := json.Unmarshal(b, &entry); err != nil {
		t.Fatalf("log is not one JSON line: %q", b)
	}
	if entry["level"] != "error" || !strings.Contains(entry["msg"].(string), "nosuch") || entry["time"] == nil {
		t.Errorf("log entry %v", entry)
	}
}
