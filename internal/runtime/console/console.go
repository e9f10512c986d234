// Package console creates a container's pseudo-terminal and passes its master
// over a unix socket with SCM_RIGHTS, as runc's --console-socket does.
package console
