#!/usr/bin/env bash
# Re-create book/_vendor/mathjax from the npm registry (needs npm; the result is committed, so
# building the book never needs npm or the network).
set -euo pipefail
version="${1:-3.2.2}"
here="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "mathjax@${version}" >/dev/null && tar xzf "mathjax-${version}.tgz")
dest="$here/book/_vendor/mathjax"
rm -rf "$dest"
mkdir -p "$dest/output/chtml"
cp "$work/package/es5/tex-mml-chtml.js" "$dest/"
cp -r "$work/package/es5/output/chtml/fonts" "$dest/output/chtml/"
cp "$work/package/LICENSE" "$dest/LICENSE"
echo "MathJax ${version} (Apache-2.0), es5/tex-mml-chtml.js and CHTML woff fonts, from npm." > "$dest/VERSION"
echo "vendored MathJax ${version} into ${dest}"
