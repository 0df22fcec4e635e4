#!/usr/bin/env bash
# Fails when a tracked C/C++ source differs from what clang-format (.clang-format at the root)
# makes of it, listing the files; `scripts/check_format.sh --fix` rewrites them in place.
set -euo pipefail
cd "$(dirname "$0")/.."
tool=$(command -v clang-format-14 || command -v clang-format || true)
[[ -n "$tool" ]] || { echo "check_format: clang-format not installed (scripts/setup.sh installs it)" >&2; exit 2; }
mapfile -t files < <(git ls-files '*.cpp' '*.hpp' '*.h' '*.c')
if [[ "${1:-}" == "--fix" ]]; then
    "$tool" -i "${files[@]}"
    exit 0
fi
bad=()
for f in "${files[@]}"; do
    "$tool" --dry-run -Werror "$f" >/dev/null 2>&1 || bad+=("$f")
done
if ((${#bad[@]})); then
    echo "check_format: ${#bad[@]} file(s) not clang-formatted (run scripts/check_format.sh --fix):" >&2
    printf '  %s\n' "${bad[@]}" >&2
    exit 1
fi
echo "check_format: ${#files[@]} files formatted"
