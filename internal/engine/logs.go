package engine

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"cove/internal/engine/container"
)

// LogOptions are `cove logs`' flags.
type LogOptions struct {
	Follow     bool
	Tail       int // lines from the end; < 0: all
	Since      time.Time
	Until      time.Time
	Timestamps bool
}

// LogEntry is one line of a container's log (docker's json-file format).
type LogEntry struct {
	Log    string    `json:"log"`
	Stream string    `json:"stream"`
	Time   time.Time `json:"time"`
}

// Logs copies the container's log to stdout and stderr by stream; with
// Follow it keeps reading until the container stops.
func (e *Engine) Logs(ctx context.Context, r *container.Record, o LogOptions, stdout, stderr io.Writer) error {
	f, err := os.Open(e.Containers.LogPath(r.ID))
	if errors.Is(err, os.ErrNotExist) {
		if !o.Follow {
			return nil
		}
		for errors.Is(err, os.ErrNotExist) {
			if !e.State(r).Running {
				return nil
			}
			time.Sleep(50 * time.Millisecond)
			f, err = os.Open(e.Containers.LogPath(r.ID))
		}
	}
	if err != nil {
		return fmt.Errorf("open log of %s: %w", r.Name, err)
	}
	defer f.Close()
	emit := func(le *LogEntry) {
		if !o.Since.IsZero() && le.Time.Before(o.Since) || !o.Until.IsZero() && le.Time.After(o.Until) {
			return
		}
		w := stdout
		if le.Stream == "stderr" {
			w = stderr
		}
		if o.Timestamps {
			io.WriteString(w, le.Time.Format(time.RFC3339Nano)+" ")
		}
		io.WriteString(w, le.Log)
	}
	br := bufio.NewReaderSize(f, 64*1024)
	if o.Tail >= 0 {
		var ring []LogEntry
		for {
			line, err := br.ReadBytes('\n')
			if len(line) > 0 && line[len(line)-1] == '\n' {
				var le LogEntry
				if json.Unmarshal(line, &le) == nil {
					ring = append(ring, le)
					if len(ring) > o.Tail {
						ring = ring[1:]
					}
				}
			} else if len(line) > 0 {
				// A partial line: the writer is mid-write; reread it later.
				f.Seek(-int64(len(line)), io.SeekCurrent)
				br.Reset(f)
			}
			if err != nil {
				break
			}
		}
		for i := range ring {
			emit(&ring[i])
		}
	}
	var partial []byte
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 {
			partial = append(partial, line...)
			if partial[len(partial)-1] == '\n' {
				var le LogEntry
				if json.Unmarshal(partial, &le) == nil {
					emit(&le)
				}
				partial = partial[:0]
			}
		}
		if err == nil {
			continue
		}
		if err != io.EOF {
			return fmt.Errorf("read log of %s: %w", r.Name, err)
		}
		if !o.Follow {
			return nil
		}
		st := e.State(r)
		if !st.Running && st.MonitorPid == 0 {
			// One last read: the supervisor flushed before exiting.
			if rest, _ := io.ReadAll(br); len(rest) == 0 {
				return nil
			} else {
				br = bufio.NewReaderSize(io.MultiReader(bytesReader(rest), f), 64*1024)
				continue
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(50 * time.Millisecond):
		}
	}
}

type byteReader struct {
	b []byte
}

func (r *byteReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}

func bytesReader(b []byte) io.Reader { return &byteReader{b: b} }
