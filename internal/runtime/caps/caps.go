// Package caps parses capability names and applies the five capability sets
// to the calling thread.
package caps
