// Package pathrs resolves and creates paths inside a root directory without
// ever leaving it, even through symlinks, "..", or concurrent renames.
package pathrs
