// Package archive unpacks untrusted image layer tars into a directory
// without ever writing outside it, and copies directory trees.
//
// Rules Apply follows (layer tars are untrusted):
//
//   - Names are taken relative to the root: leading "/" are dropped and
//     ".." inside a name is cleaned lexically, but a name that then climbs
//     above the root ("../../etc/x", "/../x") is refused with
//     ErrUnsafePath, as Docker does. The same holds for hard-link targets.
//   - Every parent directory is resolved by file descriptor inside the root
//     (internal/pathrs): a symlink in the layer that points to "/etc" is
//     followed to <root>/etc, never to the host's /etc. The last component
//     is never followed: entries are created with *at(2) calls and
//     O_NOFOLLOW, replacing whatever was there.
//   - Symlinks are created verbatim and never followed while unpacking.
//   - A hard link must point to an entry already unpacked (in this layer,
//     or in a lower layer given in Options.Lowers, which is then copied up
//     into this layer first, as overlayfs would); otherwise ErrLinkTarget.
//   - Device nodes (char and block) are created only when running as root,
//     and skipped otherwise; FIFOs are created; sockets are skipped.
//   - setuid/setgid/sticky bits are kept; nothing unpacked is executed.
//   - Xattrs (PAX SCHILY.xattr.*) are applied except trusted.* and
//     user.overlay.* (which would forge overlayfs metadata) and
//     security.selinux; security.* only as root.
//   - Ownership is applied as root; modes after ownership (chown clears
//     setuid); times after content, and directory times and modes after
//     every entry of the layer.
//   - An entry larger than Options.MaxEntrySize fails with ErrTooLarge
//     before anything is read; a cancelled context stops the unpack.
//   - Whiteouts (".wh.NAME", ".wh..wh..opq") become overlayfs whiteouts
//     (a 0/0 character device, the trusted.overlay.opaque xattr) with
//     WhiteoutOverlay, or delete lower content with WhiteoutDelete. They
//     only act inside the root.
//
// Errors are *Error values naming the layer and the entry.
package archive

import (
	"errors"
	"fmt"
	"path"
	"strings"
)

// DefaultMaxEntrySize is the largest file Apply accepts unless
// Options.MaxEntrySize says otherwise.
const DefaultMaxEntrySize = 64 << 30

// Sentinel errors wrapped by *Error, checked with errors.Is.
var (
	ErrUnsafePath      = errors.New("path climbs out of the root")
	ErrTooLarge        = errors.New("entry larger than the limit")
	ErrLinkTarget      = errors.New("hard link target not unpacked before the link")
	ErrUnsupportedType = errors.New("unsupported tar entry type")
	ErrInvalidHeader   = errors.New("invalid tar header")
)

// WhiteoutMode says how whiteout entries are applied.
type WhiteoutMode int

const (
	// WhiteoutDelete deletes the whited-out paths from the root, which
	// already holds the lower layers' files (copy and btrfs snapshots).
	WhiteoutDelete WhiteoutMode = iota
	// WhiteoutOverlay writes overlayfs whiteouts: the root holds only
	// this layer and Options.Lowers the layers below.
	WhiteoutOverlay
)

// Options configures Apply.
type Options struct {
	// Layer names the layer in errors (a chain ID or digest).
	Layer string
	// Whiteouts selects how whiteouts are applied.
	Whiteouts WhiteoutMode
	// Lowers are the directories of the layers below, topmost first
	// (WhiteoutOverlay only), used to copy up hard-link targets.
	Lowers []string
	// MaxEntrySize is the largest entry accepted; 0 means
	// DefaultMaxEntrySize.
	MaxEntrySize int64
}

// Error is an unpack failure of one entry of one layer.
type Error struct {
	Layer string // Options.Layer
	Entry string // the entry's name as in the tar; "" if not about one entry
	Op    string // what failed
	Err   error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("unpack")
	if e.Layer != "" {
		b.WriteString(" layer " + e.Layer)
	}
	if e.Entry != "" {
		fmt.Fprintf(&b, ": entry %q", e.Entry)
	}
	if e.Op != "" {
		b.WriteString(": " + e.Op)
	}
	b.WriteString(": " + e.Err.Error())
	return b.String()
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// cleanName returns name as a clean path relative to the root, "" for the
// root itself. Absolute names are taken relative to the root; a name that
// climbs above the root fails with ErrUnsafePath.
func cleanName(name string) (string, error) {
	if name == "" {
		return "", fmt.Errorf("empty name: %w", ErrInvalidHeader)
	}
	if strings.IndexByte(name, 0) >= 0 {
		return "", fmt.Errorf("NUL in name: %w", ErrInvalidHeader)
	}
	p := path.Clean(strings.TrimLeft(name, "/"))
	if p == ".." || strings.HasPrefix(p, "../") {
		return "", ErrUnsafePath
	}
	if p == "." {
		return "", nil
	}
	return p, nil
}

// splitName splits a clean relative path into its directory ("" for the
// root) and last component.
func splitName(p string) (dir, base string) {
	i := strings.LastIndexByte(p, '/')
	if i < 0 {
		return "", p
	}
	return p[:i], p[i+1:]
}
