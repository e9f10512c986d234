package snapshot

// Option configures Open.
type Option func(*config)

type config struct {
	driver       string // "" picks one
	maxEntrySize int64  // 0: archive.DefaultMaxEntrySize
	noSync       bool
}

// WithDriver forces a driver (DriverOverlay, DriverBtrfs or DriverCopy)
// instead of detecting the best one. A store keeps the driver it was
// created with; asking for another one on a later Open fails.
func WithDriver(name string) Option { return func(c *config) { c.driver = name } }

// WithMaxEntrySize sets the largest file a layer may contain (default
// archive.DefaultMaxEntrySize); larger entries fail the unpack.
func WithMaxEntrySize(n int64) Option { return func(c *config) { c.maxEntrySize = n } }

// WithoutSync skips the syncfs(2) before a snapshot is committed. Faster,
// but after a power loss a committed snapshot may hold truncated files.
func WithoutSync() Option { return func(c *config) { c.noSync = true } }

// PrepareOption configures Prepare.
type PrepareOption func(*prepareConfig)

type prepareConfig struct {
	readOnly    bool
	labels      map[string]string
	sizeLimit   int64
	quotaDriver string
}

// WithReadOnly makes a view: the mount is read-only and has no upper layer.
func WithReadOnly() PrepareOption { return func(c *prepareConfig) { c.readOnly = true } }

// WithLabels records labels (for example the owning container) with the
// active layer.
func WithLabels(l map[string]string) PrepareOption {
	return func(c *prepareConfig) { c.labels = l }
}

// WithSizeLimit caps the bytes the writable layer may hold, with the
// quota driver QuotaDriver names (btrfs qgroups, project quotas, or a
// loop-mounted ext4 image). Prepare fails with ErrNotSupported when no
// driver works here, and with ErrInvalid for a read-only view.
func WithSizeLimit(bytes int64) PrepareOption {
	return func(c *prepareConfig) { c.sizeLimit = bytes }
}

// WithQuotaDriver picks the quota driver (quota.Btrfs, quota.Loop or
// quota.Project) for WithSizeLimit instead of the best one available.
func WithQuotaDriver(name string) PrepareOption {
	return func(c *prepareConfig) { c.quotaDriver = name }
}
