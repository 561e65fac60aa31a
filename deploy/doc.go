// Package deploy holds the files tripcap is run from on a fleet — systemd
// units (systemd/), example config files (config/), the container recipe
// (container/) and Kubernetes manifests (kubernetes/) — and the tests that
// prove them: units verified by systemd-analyze, manifests decoded strictly
// against the Kubernetes API types, the release binary static and stamped.
// It has no code of its own; its test-only dependencies (k8s.io/api) are
// never linked into tripcap.
package deploy
