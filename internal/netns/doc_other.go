//go:build !linux

// Package netns is Linux-only: network namespaces do not exist elsewhere.
package netns
