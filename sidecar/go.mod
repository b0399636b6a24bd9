module github.com/nlb-guard/nlb-guard/sidecar

// The oldest Go this builds with (log/slog, net/netip, binary.NativeEndian); the Dockerfile's
// GO_VERSION and the machine's Go may be newer.
go 1.23
