// Package hooks runs OCI lifecycle hooks with the container state on stdin.
package hooks
