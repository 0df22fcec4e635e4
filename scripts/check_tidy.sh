#!/usr/bin/env bash
# Runs clang-tidy-14 (checks in .clang-tidy at the root; warnings are errors) with the compile
# commands of a build (default build/test: configure it first) on the C++ sources named after it,
# or on every tracked one in src/ when none is named, NM_TIDY_JOBS files at a time (default 2).
# Fails listing what it found; says how long it took.
#   scripts/check_tidy.sh [BUILD_DIR [FILE...]]    e.g. scripts/check_tidy.sh build/test src/core/config.cpp
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build/test}
shift $(($# > 0 ? 1 : 0))
jobs=${NM_TIDY_JOBS:-2}
tidy=$(command -v clang-tidy-14 || true)
[[ -n "$tidy" ]] || { echo "check_tidy: clang-tidy-14 not installed (scripts/setup.sh installs it)" >&2; exit 2; }
[[ -f "$build/compile_commands.json" ]] ||
    { echo "check_tidy: no $build/compile_commands.json; configure that build first" >&2; exit 2; }
if (($# > 0)); then
    files=("$@")
    for f in "${files[@]}"; do
        [[ "$f" == *.cpp && -f "$f" ]] ||
            { echo "check_tidy: '$f' is not a .cpp file of the tree (headers are checked through them)" >&2; exit 2; }
    done
    what="${#files[@]} named file(s)"
else
    mapfile -t files < <(git ls-files 'src/*.cpp')
    what="${#files[@]} files in src/"
fi
log="$build/clang-tidy.log"
start=$SECONDS
# The commands are g++-12's: clang-14 spells C++23 c++2b (the later flag wins).
status=0
printf '%s\n' "${files[@]}" |
    xargs -P "$jobs" -n 1 "$tidy" -p "$build" --quiet --extra-arg=-std=c++2b >"$log" 2>&1 || status=$?
if ((status == 0)); then
    echo "check_tidy: $what clean ($((SECONDS - start)) s, $jobs jobs)"
    exit 0
fi
sed 's/\x1b\[[0-9;]*m//g' "$log" | grep -E '(warning|error): ' | sort -u >&2 || cat "$log" >&2
echo "check_tidy: clang-tidy found the above in $what ($((SECONDS - start)) s; all output in $log)" >&2
exit 1
