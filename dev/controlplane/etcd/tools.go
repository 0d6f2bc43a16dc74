//go:build tools

// Package tools pins etcd for ../build.sh.
package tools

import _ "go.etcd.io/etcd/server/v3"
