package image

import (
	"fmt"
	"regexp"
	"strings"

	"cove/internal/engine/content"
)

// DefaultDomain is the registry of references without one (Docker Hub).
const DefaultDomain = "docker.io"

// Reference is a normalized image reference: docker.io/library/busybox:latest.
type Reference struct {
	Domain string // registry host[:port], e.g. docker.io or 127.0.0.1:5000
	Path   string // repository path, e.g. library/busybox
	Tag    string // "" when only a digest was given
	Digest string // "" when only a tag was given
}

var (
	pathComponent = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*$`)
	tagRe         = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)
	domainRe      = regexp.MustCompile(`^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*|\[[0-9A-Fa-f:]+\])(?::[0-9]+)?$`)
)

// ParseReference normalizes a reference the way Docker does: "busybox" is
// docker.io/library/busybox:latest, "user/app" is docker.io/user/app:latest,
// "registry:5000/ns/name@sha256:..." keeps its registry and digest.
func ParseReference(s string) (Reference, error) {
	var r Reference
	if s == "" {
		return r, fmt.Errorf("invalid reference: empty")
	}
	rest := s
	if i := strings.Index(rest, "@"); i >= 0 {
		r.Digest = rest[i+1:]
		rest = rest[:i]
		if err := content.ValidDigest(r.Digest); err != nil {
			return r, fmt.Errorf("invalid reference %q: %w", s, err)
		}
	}
	if i := strings.LastIndex(rest, ":"); i >= 0 && !strings.Contains(rest[i+1:], "/") {
		r.Tag = rest[i+1:]
		rest = rest[:i]
		if !tagRe.MatchString(r.Tag) {
			return r, fmt.Errorf("invalid reference %q: bad tag %q", s, r.Tag)
		}
	}
	first, remainder, hasSlash := strings.Cut(rest, "/")
	if hasSlash && (strings.ContainsAny(first, ".:") || first == "localhost" || strings.HasPrefix(first, "[")) {
		r.Domain, r.Path = first, remainder
	} else {
		r.Domain, r.Path = DefaultDomain, rest
	}
	if r.Domain == "index.docker.io" || r.Domain == "registry-1.docker.io" {
		r.Domain = DefaultDomain
	}
	if r.Domain == DefaultDomain && !strings.Contains(r.Path, "/") {
		r.Path = "library/" + r.Path
	}
	if !domainRe.MatchString(r.Domain) {
		return r, fmt.Errorf("invalid reference %q: bad registry %q", s, r.Domain)
	}
	if len(r.Path) > 255 {
		return r, fmt.Errorf("invalid reference %q: repository name too long", s)
	}
	for _, c := range strings.Split(r.Path, "/") {
		if !pathComponent.MatchString(c) {
			return r, fmt.Errorf("invalid reference %q: bad repository name component %q (lowercase letters, digits and separators only)", s, c)
		}
	}
	if r.Tag == "" && r.Digest == "" {
		r.Tag = "latest"
	}
	return r, nil
}

// Repository is domain/path.
func (r Reference) Repository() string { return r.Domain + "/" + r.Path }

// String is the full normalized reference.
func (r Reference) String() string {
	s := r.Repository()
	if r.Tag != "" {
		s += ":" + r.Tag
	}
	if r.Digest != "" {
		s += "@" + r.Digest
	}
	return s
}

// Name is the key images are stored under: repository:tag, or
// repository@digest when no tag was given.
func (r Reference) Name() string {
	if r.Tag != "" {
		return r.Repository() + ":" + r.Tag
	}
	return r.Repository() + "@" + r.Digest
}
