# What the fuzzers' run.sh scripts share: each builds its fuzzer with clang++-14 (libFuzzer + ASan
# + UBSan) straight from the sources it needs, seeds a corpus and fuzzes for a bounded time.
#   fuzz_init NAME BUILD_DIR [SECONDS]   sets src (the tree), out, binary and seconds
#   sources=(...); fuzz_build 'WATCHED GLOBS' [LINK FLAGS...]
#   seed NAME 'printf text'...; fuzz_run DETECT_LEAKS (0 or 1)
fuzz_init() {
  src="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  out="${2:?build directory}/fuzz_$1"
  binary="$out/fuzz_$1"
  seconds="${3:-60}"
  mkdir -p "$out/corpus"
}

# Builds $binary from ${sources[@]} when it is missing or older than them or a WATCHED file.
fuzz_build() {
  local watched=$1 newest
  shift
  # shellcheck disable=SC2086  # WATCHED holds globs, expanded in the tree
  newest=$(cd "$src" && ls -t "${sources[@]}" $watched | head -1)
  if [[ ! -x "$binary" || "$src/$newest" -nt "$binary" ]]; then
    echo "building $binary"
    (cd "$src" && clang++-14 -std=c++2b -O1 -g -fno-omit-frame-pointer \
        -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
        -Isrc "${sources[@]}" "$@" -o "$binary")
  fi
}

seed() { printf "$2" > "$out/corpus/$1"; }

# Fuzzes the corpus for $seconds; fails on any crash or sanitizer report.
fuzz_run() {
  cd "$out"
  ASAN_OPTIONS=detect_leaks=$1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    "$binary" -max_total_time="$seconds" -rss_limit_mb=1024 -print_final_stats=1 corpus
}
