#!/usr/bin/env bash
# What the image's proxy layer holds, measured without Docker: the tree the
# Dockerfile's runtime stage copies (package.json, `npm ci --omit=dev` from the
# lock file, dist/ built from src/ without tests), assembled in a temporary
# directory. Prints its size on disk and its largest packages, and checks it
# against the 150 MB target. The base image (node:24-bookworm-slim) is not
# counted: it is shared by every Node service on a node.
#
# Usage: scripts/image-tree.sh [--keep]   (--keep: leave the tree and print its path)
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
target_mb=150
keep=false
[[ "${1:-}" == "--keep" ]] && keep=true

tree="$(mktemp -d "${TMPDIR:-/tmp}/kvp-image-tree.XXXXXX")"
if [[ "$keep" == false ]]; then trap 'rm -rf "$tree"' EXIT; fi

cp "$repo/package.json" "$repo/package-lock.json" "$tree/"
# As the Dockerfile's prod-deps stage: production dependencies only, no install scripts.
(cd "$tree" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --prefer-offline --loglevel=error >/dev/null)
# As its build stage: tsc over src/ without the tests (tsconfig.build.json, like the .dockerignore).
(cd "$repo" && node_modules/.bin/tsc -p tsconfig.build.json --outDir "$tree/dist")

bytes() { du -sb "$1" | cut -f1; }
mb() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1e6 }'; }

total=$(bytes "$tree")
deps=$(bytes "$tree/node_modules")
dist=$(bytes "$tree/dist")
echo "Image proxy layer (the tree the Dockerfile copies to /app): $(mb "$total") MB"
echo "  node_modules (npm ci --omit=dev): $(mb "$deps") MB in $(find "$tree/node_modules" -name package.json -path '*/node_modules/*/package.json' -not -path '*/node_modules/*/node_modules/*/*/package.json' | wc -l) package.json files"
echo "  dist/ (compiled src, with source maps): $(mb "$dist") MB"
echo
echo "Largest packages (MB, nested dependencies included):"
for dir in "$tree"/node_modules/* "$tree"/node_modules/@*/*; do
  [[ -d "$dir" && "$(basename "$dir")" != @* && "$(basename "$dir")" != .bin ]] || continue
  printf '%s\t%s\n' "$(bytes "$dir")" "${dir#"$tree"/node_modules/}"
done | sort -rn | head -15 | awk -F'\t' '{ printf "  %8.1f  %s\n", $1 / 1e6, $2 }'
echo
if awk -v b="$total" -v t="$target_mb" 'BEGIN { exit !(b / 1e6 <= t) }'; then
  echo "Target ≤ ${target_mb} MB: met"
else
  echo "Target ≤ ${target_mb} MB: NOT met"
fi
[[ "$keep" == true ]] && echo "Tree kept at $tree"
exit 0
