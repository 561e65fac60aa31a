#!/bin/sh
# Reproduces console/assets/vendor/ from npm: the exact versions below,
# checked against the registry's integrity hashes, with their licences.
# Only this script needs the network; the console embeds what it wrote.
set -eu
cd "$(dirname "$0")"
UPLOT_VERSION=1.6.32
UPLOT_INTEGRITY=sha512-KIMVnG68zvu5XXUbC4LQEPnhwOxBuLyW1AHtpm6IKTXImkbLgkMy+jabjLgSLMasNuGGzQm/ep3tOkyTxpiQIw==

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "uplot@$UPLOT_VERSION" >/dev/null)
tgz="$tmp/uplot-$UPLOT_VERSION.tgz"
got="sha512-$(openssl dgst -sha512 -binary "$tgz" | base64 -w0)"
if [ "$got" != "$UPLOT_INTEGRITY" ]; then
	echo "uplot-$UPLOT_VERSION.tgz: integrity $got, want $UPLOT_INTEGRITY" >&2
	exit 1
fi
tar -xzf "$tgz" -C "$tmp"
rm -rf vendor/uplot
mkdir -p vendor/uplot
cp "$tmp/package/dist/uPlot.iife.min.js" "$tmp/package/dist/uPlot.min.css" "$tmp/package/LICENSE" vendor/uplot/
echo "uPlot $UPLOT_VERSION (MIT): https://github.com/leeoniya/uPlot" > vendor/uplot/VERSION
