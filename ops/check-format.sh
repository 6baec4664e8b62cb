#!/usr/bin/env bash
# Fails when a C++ file of the project is not formatted as .clang-format says (Google style, 100
# columns), naming the files; `ops/check-format.sh --fix` formats them in place. Part of
# `ops/run.sh test`.
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(git ls-files '*.cc' '*.h' '*.c' 2>/dev/null || find core connectors plugins tests fuzz \( -name '*.cc' -o -name '*.h' -o -name '*.c' \))
if [ "${1:-}" = "--fix" ]; then
  clang-format -i "${files[@]}"
  exit 0
fi
bad=()
for f in "${files[@]}"; do
  clang-format --dry-run -Werror "$f" >/dev/null 2>&1 || bad+=("$f")
done
if [ ${#bad[@]} -gt 0 ]; then
  echo "check-format: ${#bad[@]} file(s) are not formatted (ops/check-format.sh --fix):"
  printf '  %s\n' "${bad[@]}"
  exit 1
fi
echo "check-format: ${#files[@]} files formatted"
