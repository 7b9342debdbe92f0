# Shared helpers for the end-to-end test scripts (sourced, not run).
set -eu

top_builddir=${top_builddir:-$(cd "$(dirname "$0")/.." && pwd)}
top_srcdir=${top_srcdir:-$top_builddir}
DDTRAIN="$top_builddir/ddtrain"
export DDTRAIN
RUN="$top_srcdir/launch/ddtrain-run"

work=$(mktemp -d "${TMPDIR:-/tmp}/ddtrain-test.XXXXXX")
trap 'rm -rf "$work"' EXIT

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

# The value of a numeric field in a JSON line: json_field LINE NAME
json_field() {
  printf '%s\n' "$1" | sed -n "s/.*\"$2\":\\([^,}]*\\).*/\\1/p"
}

# a < b for decimal numbers
num_lt() {
  awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 < b + 0) }'
}

# Skips the test (exit 77) when Fashion-MNIST is not installed.
need_fashion_mnist() {
  [ -d /usr/share/datasets/fashion-mnist ] || {
    echo "SKIP: Debian's dataset-fashion-mnist is not installed" >&2
    exit 77
  }
}
