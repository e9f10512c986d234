// Package monitor is cove's per-container supervisor (conmon's job): it
// starts the container through the runtime's command line, holds its
// stdio, writes its log as JSON lines, records its exit, applies the
// restart policy, serves attach clients on a unix socket, and has the
// engine clean up after the last exit. It runs as its own small binary
// (cmd/cove-monitor) in its own session, so the cove command that started
// it may die at any time; and it imports little, to stay small in memory.
//
// This file holds the attach protocol shared by the supervisor and the
// engine's clients: frames of one type byte, a 4-byte big-endian length
// and the payload.
package monitor

import (
	"errors"
	"io"
)

// Frame types.
const (
	FrameStdin      = 0  // client -> monitor: bytes for the container's stdin
	FrameStdout     = 1  // monitor -> client
	FrameStderr     = 2  // monitor -> client
	FrameCloseStdin = 3  // client -> monitor: stdin reached EOF
	FrameResize     = 4  // client -> monitor: rows, cols (2 bytes each)
	FrameClaim      = 5  // client -> monitor: the client cleans up after the exit
	FrameStarted    = 10 // monitor -> client: payload is the container pid (decimal)
	FrameExit       = 11 // monitor -> client: payload is the exit code (decimal), after runtime delete
	FrameError      = 12 // monitor -> client: start failed; payload "CODE message"
)

// MaxFrame bounds a frame's payload.
const MaxFrame = 1 << 20

// WriteFrame writes one frame.
func WriteFrame(w io.Writer, typ byte, p []byte) error {
	if len(p) > MaxFrame {
		return errors.New("attach frame too large")
	}
	buf := make([]byte, 5+len(p))
	buf[0] = typ
	n := uint32(len(p))
	buf[1], buf[2], buf[3], buf[4] = byte(n>>24), byte(n>>16), byte(n>>8), byte(n)
	copy(buf[5:], p)
	_, err := w.Write(buf)
	return err
}

// ReadFrame reads one frame.
func ReadFrame(r io.Reader) (byte, []byte, error) {
	var h [5]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, nil, err
	}
	n := uint32(h[1])<<24 | uint32(h[2])<<16 | uint32(h[3])<<8 | uint32(h[4])
	if n > MaxFrame {
		return 0, nil, errors.New("attach frame too large")
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(r, p); err != nil {
		return 0, nil, err
	}
	return h[0], p, nil
}
