// Package nsexec is the part of the runtime that must run before the Go
// runtime starts threads: joining namespaces by path (setns of user and mount
// namespaces needs a single-threaded process), creating new ones, and forking
// the process that becomes the container's init (or an exec'd process).
//
// Importing the package installs a C constructor. It does nothing unless the
// environment variable _COVE_INIT is set, which only the runtime's own spawn
// code does when it re-executes itself. The protocol on the sync socket
// (fd in _COVE_SYNCFD) is newline-separated:
//
//	parent -> child  "go"              cgroup placement done, proceed
//	child  -> parent {"type":"idmap"}  new user namespace: write uid/gid maps
//	parent -> child  "idmap-done"
//	child  -> parent {"type":"pid","pid":N}  the forked process, in every namespace
//	child  -> parent {"type":"error","msg":"..."}
//
// Other variables: _COVE_JOIN lists "type:path" lines to join (the user
// namespace is joined first), _COVE_CLONE holds the CLONE_NEW* flags to
// unshare, _COVE_TIMENS holds lines for /proc/self/timens_offsets.
package nsexec
