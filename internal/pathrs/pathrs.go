// Package pathrs resolves and creates paths inside a root directory without
// ever leaving it, even through symlinks, "..", or concurrent renames.
//
// Every function treats root as "/": absolute symlinks restart at root and
// ".." at root stays at root. Resolution uses openat2(2) with
// RESOLVE_IN_ROOT where the kernel has it and a component-by-component walk
// on O_PATH file descriptors otherwise. Callers act on the returned file
// descriptors (for example mount(2) onto ProcfdPath), never on a path string
// joined again from root and path.
package pathrs
