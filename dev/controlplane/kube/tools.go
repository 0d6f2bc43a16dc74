//go:build tools

// Package tools pins the Kubernetes control-plane binaries built by
// ../build.sh. It is never compiled; it only keeps `go mod tidy` honest.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
