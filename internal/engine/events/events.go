// Package events is cove's event journal, the daemonless stand-in for
// docker's event stream: every cove command and supervisor appends one JSON
// line per event (container create, start, oom, die, destroy, update;
// volume create, destroy) to <root>/events.jsonl with O_APPEND, so
// concurrent writers never interleave, and `cove events` reads and follows
// it. The journal is rotated to events.jsonl.1 past MaxSize.
package events

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// File is the journal's name in the store directory.
const File = "events.jsonl"

// MaxSize is the journal size past which an append rotates it.
const MaxSize = 4 << 20

// Event is one line of the journal, in docker's event field names.
type Event struct {
	Type       string            `json:"Type"`   // container, volume
	Action     string            `json:"Action"` // create, start, oom, die, destroy, update
	ID         string            `json:"id"`
	Attributes map[string]string `json:"Attributes,omitempty"`
	TimeNano   int64             `json:"timeNano"`
}

// Time is when the event happened.
func (e *Event) Time() time.Time { return time.Unix(0, e.TimeNano) }

// Append writes ev (stamped now if it has no time) to root's journal.
// Errors are returned but callers may ignore them: events are advisory.
func Append(root string, ev Event) error {
	if ev.TimeNano == 0 {
		ev.TimeNano = time.Now().UnixNano()
	}
	b, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	p := filepath.Join(root, File)
	if st, err := os.Stat(p); err == nil && st.Size() > MaxSize {
		os.Rename(p, p+".1")
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("event journal: %w", err)
	}
	defer f.Close()
	if _, err := f.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("event journal: %w", err)
	}
	return nil
}

// Options select what Read delivers.
type Options struct {
	Since, Until time.Time // zero: from the beginning / no end
	// Follow keeps reading new events until ctx ends or Until passes.
	Follow bool
	// Match filters events; nil takes all.
	Match func(*Event) bool
}

// Read calls fn for each journal event in order (the rotated file first).
func Read(ctx context.Context, root string, o Options, fn func(*Event) error) error {
	p := filepath.Join(root, File)
	if err := readFile(p+".1", o, fn, nil); err != nil {
		return err
	}
	var off int64
	if err := readFile(p, o, fn, &off); err != nil {
		return err
	}
	if !o.Follow {
		return nil
	}
	for {
		if !o.Until.IsZero() && time.Now().After(o.Until) {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(100 * time.Millisecond):
		}
		if st, err := os.Stat(p); err == nil && st.Size() < off {
			off = 0 // rotated
		}
		if err := readFile(p, o, fn, &off); err != nil {
			return err
		}
	}
}

// readFile delivers the events of p from *off (0 without off), moving
// *off past the last complete line.
func readFile(p string, o Options, fn func(*Event) error, off *int64) error {
	f, err := os.Open(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("event journal: %w", err)
	}
	defer f.Close()
	var start int64
	if off != nil {
		start = *off
		if _, err := f.Seek(start, io.SeekStart); err != nil {
			return fmt.Errorf("event journal: %w", err)
		}
	}
	r := bufio.NewReader(f)
	for {
		line, err := r.ReadBytes('\n')
		if err != nil {
			return nil // EOF or a partial last line: read again later
		}
		start += int64(len(line))
		if off != nil {
			*off = start
		}
		var ev Event
		if json.Unmarshal(line, &ev) != nil {
			continue
		}
		t := ev.Time()
		if !o.Since.IsZero() && t.Before(o.Since) || !o.Until.IsZero() && t.After(o.Until) {
			continue
		}
		if o.Match != nil && !o.Match(&ev) {
			continue
		}
		if err := fn(&ev); err != nil {
			return err
		}
	}
}
