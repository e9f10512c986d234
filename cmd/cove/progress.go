package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"cove/internal/engine/image"

	"golang.org/x/sys/unix"
)

// isTerminal reports whether f is a terminal.
func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// progress renders transfer events: one live line per layer on a
// terminal, a plain line per state change otherwise, nothing when quiet.
type progress struct {
	mu    sync.Mutex
	w     io.Writer
	live  bool
	quiet bool
	order []string
	lines map[string]string
	drawn int
	last  time.Time
}

func newProgress(w *os.File, quiet bool) *progress {
	return &progress{w: w, live: isTerminal(w), quiet: quiet, lines: map[string]string{}}
}

func short(d string) string {
	d = strings.TrimPrefix(d, "sha256:")
	if len(d) > 12 {
		return d[:12]
	}
	return d
}

func humanSize(n int64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%dB", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.3g%cB", float64(n)/float64(div), "kMGTPE"[exp])
}

// event is an image.RemoteOptions.Progress callback.
func (p *progress) event(e image.Event) {
	if p.quiet {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	var line string
	switch e.Kind {
	case image.EventResolved:
		fmt.Fprintf(p.w, "Resolved %s (manifest %s, %d layers)\n", e.Image, short(e.Layer), e.Total)
		return
	case image.EventDone:
		p.redraw(true)
		return
	case image.EventUploading:
		line = fmt.Sprintf("Pushing %s / %s", humanSize(e.Current), humanSize(e.Total))
		e.Layer = "upload"
	case image.EventExists:
		line = "Already exists"
	case image.EventWaiting:
		line = "Waiting"
	case image.EventDownloading:
		line = fmt.Sprintf("Downloading %s / %s", humanSize(e.Current), humanSize(e.Total))
	case image.EventDownloaded:
		line = "Download complete"
	case image.EventUnpacking:
		line = "Unpacking"
	case image.EventUnpacked:
		line = "Unpacked"
	default:
		return
	}
	if _, ok := p.lines[e.Layer]; !ok {
		p.order = append(p.order, e.Layer)
	}
	prev := p.lines[e.Layer]
	// Unpacking starts while the download still streams: keep showing bytes.
	if e.Kind == image.EventUnpacking && strings.HasPrefix(prev, "Downloading") {
		line = prev + ", unpacking"
	}
	if e.Kind == image.EventDownloading && strings.HasSuffix(prev, "unpacking") {
		line += ", unpacking"
	}
	p.lines[e.Layer] = line
	if !p.live {
		if e.Kind != image.EventDownloading && e.Kind != image.EventUploading && e.Kind != image.EventWaiting {
			fmt.Fprintf(p.w, "%s: %s\n", short(e.Layer), line)
		}
		return
	}
	p.redraw(false)
}

func (p *progress) redraw(force bool) {
	if !p.live {
		return
	}
	if !force && time.Since(p.last) < 80*time.Millisecond {
		return
	}
	p.last = time.Now()
	var b strings.Builder
	if p.drawn > 0 {
		fmt.Fprintf(&b, "\x1b[%dA", p.drawn)
	}
	for _, l := range p.order {
		fmt.Fprintf(&b, "\x1b[2K%s: %s\n", short(l), p.lines[l])
	}
	p.drawn = len(p.order)
	io.WriteString(p.w, b.String())
}

// finish draws the final state.
func (p *progress) finish() {
	if p.quiet {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.redraw(true)
}
