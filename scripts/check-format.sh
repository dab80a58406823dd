#!/usr/bin/env bash
# Checks that every C/C++ file of the tree is formatted as .clang-format
# says (`clang-format --dry-run -Werror`). Run by `meson test --suite lint`
# (scripts/test.sh runs it with the rest). Prints the files that are not
# formatted and exits 1; `scripts/check-format.sh --fix` formats them.
#   CLANG_FORMAT=clang-format-14  another binary
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
CLANG_FORMAT=${CLANG_FORMAT:-clang-format}

if ! command -v "$CLANG_FORMAT" >/dev/null 2>&1; then
  echo "check-format: $CLANG_FORMAT not found (scripts/install-deps.sh installs it)" >&2
  exit 77 # meson: skipped
fi

# Tracked files when this is a git checkout, else every file under the tree;
# never a build directory.
if git -C "$ROOT" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  mapfile -t files < <(git -C "$ROOT" ls-files -- '*.c' '*.cc' '*.cpp' '*.h' '*.hh' '*.hpp')
else
  mapfile -t files < <(find . -path ./build -prune -o -path './build-*' -prune -o \
    -type f \( -name '*.c' -o -name '*.cc' -o -name '*.cpp' -o -name '*.h' \
    -o -name '*.hh' -o -name '*.hpp' \) -print | sed 's|^\./||' | sort)
fi

if [[ "${1:-}" == "--fix" ]]; then
  "$CLANG_FORMAT" -i "${files[@]}"
  exit 0
fi

bad=()
for f in "${files[@]}"; do
  [[ -f "$f" ]] || continue
  if ! "$CLANG_FORMAT" --dry-run -Werror "$f" >/dev/null 2>&1; then
    bad+=("$f")
  fi
done

if (( ${#bad[@]} > 0 )); then
  echo "check-format: ${#bad[@]} of ${#files[@]} files are not formatted:" >&2
  printf '  %s\n' "${bad[@]}" >&2
  echo "check-format: fix with: scripts/check-format.sh --fix" >&2
  exit 1
fi
echo "check-format: ${#files[@]} files formatted"
