package hooks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// stderrKeep bounds how much of a hook's stderr is kept for the error.
const stderrKeep = 4096

// stderrLines is how many trailing stderr lines an error quotes.
const stderrLines = 5

// waitDelay bounds how long Run waits for a killed hook's descendants to
// close its stderr before giving up on the pipe.
const waitDelay = 500 * time.Millisecond

// Run executes hooks in order, each with state encoded as JSON on its stdin,
// its own Args (Args[0] is argv[0]; Path is the executable) and Env, and its
// timeout (seconds; its process group is killed when exceeded). It stops at
// the first failure and returns an error naming the hook's path, its exit
// status or the timeout, and the last lines of its stderr.
//
// A hook without Env gets an empty environment, not the runtime's; a hook
// without Args gets Path as argv[0].
func Run(hooks []specs.Hook, state *specs.State) error {
	if len(hooks) == 0 {
		return nil
	}
	data, err := json.Marshal(state)
	if err != nil {
		return fmt.Errorf("encode state for hooks: %w", err)
	}
	for i := range hooks {
		if err := runOne(&hooks[i], data); err != nil {
			return err
		}
	}
	return nil
}

func runOne(h *specs.Hook, state []byte) error {
	ctx := context.Background()
	var timeout time.Duration
	if h.Timeout != nil {
		if *h.Timeout <= 0 {
			return fmt.Errorf("hook %s: timeout %d is not positive", h.Path, *h.Timeout)
		}
		timeout = time.Duration(*h.Timeout) * time.Second
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}

	cmd := exec.CommandContext(ctx, h.Path)
	if len(h.Args) > 0 {
		cmd.Args = h.Args
	}
	cmd.Env = h.Env
	if cmd.Env == nil {
		cmd.Env = []string{}
	}
	cmd.Stdin = bytes.NewReader(state)
	stderr := &tailBuffer{max: stderrKeep}
	cmd.Stderr = stderr
	// Own process group, so a timeout kills the hook's children too (a
	// shell script's sleep would otherwise keep running and hold stderr).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	cmd.WaitDelay = waitDelay

	err := cmd.Run()
	if err == nil {
		return nil
	}
	var what string
	switch {
	case ctx.Err() != nil && errors.Is(ctx.Err(), context.DeadlineExceeded):
		what = fmt.Sprintf("timed out after %s", timeout)
	default:
		what = err.Error()
	}
	if tail := stderr.lastLines(stderrLines); tail != "" {
		return fmt.Errorf("hook %s: %s: stderr: %s", h.Path, what, tail)
	}
	return fmt.Errorf("hook %s: %s", h.Path, what)
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	max int
	buf []byte
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	n := len(p)
	if len(p) >= b.max {
		b.buf = append(b.buf[:0], p[len(p)-b.max:]...)
		return n, nil
	}
	if over := len(b.buf) + len(p) - b.max; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
	}
	b.buf = append(b.buf, p...)
	return n, nil
}

// lastLines returns up to n trailing non-empty lines joined by "; ".
func (b *tailBuffer) lastLines(n int) string {
	lines := strings.Split(strings.TrimSpace(string(b.buf)), "\n")
	var out []string
	for i := len(lines) - 1; i >= 0 && len(out) < n; i-- {
		if l := strings.TrimSpace(lines[i]); l != "" {
			out = append(out, l)
		}
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return strings.Join(out, "; ")
}
