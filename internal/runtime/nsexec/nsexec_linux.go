package nsexec

// #cgo CFLAGS: -Wall -O2
import "C"
