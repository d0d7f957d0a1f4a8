#!/usr/bin/env bash
# test_fuzz_index.sh [BUILD_DIR] — the protocol index of docs/wire-formats.md matches the tree
# (scripts/check-fuzz-index.sh), and the check itself fails on each kind of drift, shown on
# throwaway trees: an unlisted parser, an unlisted fuzz target, a row whose parser, fuzz
# target or test does not exist, a row without a fuzz target, a row broken by a '|'.
# Prints "ok: ..." per check and "N passed, N failed".
# shellcheck disable=SC2016 # the backquotes in the rows below are markdown, not shell
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
CHECK_SCRIPT="$ROOT/scripts/check-fuzz-index.sh"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/sw-fuzz-index.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
source "$ROOT/tests/lib/check.sh"

check "the index of docs/wire-formats.md matches the tree" "$CHECK_SCRIPT" "$ROOT"

# A tree of one parser, its fuzz target and its test, indexed by the given table row.
fake_tree() { # row
    rm -rf "$WORK/t"
    mkdir -p "$WORK/t/docs" "$WORK/t/common" "$WORK/t/tests/fuzz" "$WORK/t/tests/unit"
    printf 'int a(void) { struct sw_reader r; sw_reader_init(&r, 0, 0); return 0; }\n' \
        >"$WORK/t/common/a.c"
    printf 'int LLVMFuzzerTestOneInput(void);\n' >"$WORK/t/tests/fuzz/fuzz_a.c"
    printf 'int t;\n' >"$WORK/t/tests/unit/test_a.c"
    printf '# Wire formats\n\n## Index\n\n| format | layout | parser | fuzz | test |\n|---|---|---|---|---|\n%s\n\n## Next\n\n| x | y |\n|---|---|\n| not | indexed |\n' \
        "$1" >"$WORK/t/docs/wire-formats.md"
}
GOOD='| A | here | `common/a.c`: `a` | `fuzz_a` | `test_a.c` |'

# Runs the check on the fake tree; passes when its verdict is $1 (ok / fail) and, failing,
# its output holds $2.
expect() { # ok|fail [text]
    local out rc
    out=$("$CHECK_SCRIPT" "$WORK/t" 2>&1)
    rc=$?
    if [ "$1" = ok ]; then
        [ "$rc" -eq 0 ] || { echo "$out"; return 1; }
    elif [ "$rc" -eq 0 ] || ! grep -qF -- "$2" <<<"$out"; then
        echo "rc $rc: $out"
        return 1
    fi
}

fake_tree "$GOOD"
check "a parser with its row, fuzz target and test passes" expect ok
printf 'int b(void) { return sw_json_parse(0, 0, 0, 0); }\n' >"$WORK/t/common/b.c"
check "a parser file missing from the index fails" \
    expect fail "common/b.c reads untrusted bytes (sw_json_parse) but is not named"
mkdir -p "$WORK/t/visor" && mv "$WORK/t/common/b.c" "$WORK/t/visor/b.c"
check "... in any daemon folder" expect fail "visor/b.c reads untrusted bytes"
rm "$WORK/t/visor/b.c"
printf 'int c(void) { return 0; } /* no reader here */\n' >"$WORK/t/common/c.c"
check "a file that parses nothing needs no row" expect ok
printf 'int LLVMFuzzerTestOneInput(void);\n' >"$WORK/t/tests/fuzz/fuzz_b.c"
check "a fuzz target missing from the index fails" \
    expect fail "tests/fuzz/fuzz_b.c is not named in the index"

fake_tree '| A | here | `common/gone.c`: `a`; `common/a.c` | `fuzz_a` | `test_a.c` |'
check "a row naming a parser file that does not exist fails" \
    expect fail "parser common/gone.c does not exist"
fake_tree '| A | here | `common/a.c`: `a` | none | `test_a.c` |'
check "a row without a fuzz target fails" expect fail "'A' names no fuzz target"
fake_tree '| A | here | `common/a.c`: `a` | `fuzz_a`, `fuzz_gone` | `test_a.c` |'
check "a row naming a fuzz target that does not exist fails" \
    expect fail "fuzz target tests/fuzz/fuzz_gone.c does not exist"
fake_tree '| A | here | `common/a.c`: `a` | `fuzz_a` | `test_gone.c` |'
check "a row naming a test that does not exist fails" expect fail "test test_gone.c is in no tests/*/ folder"
fake_tree '| A | `u16 L || msg` | `common/a.c`: `a` | `fuzz_a` | `test_a.c` |'
check "a '|' inside a cell fails (the row cannot be read)" expect fail "a row needs 5 cells, this one has 7"
rm -f "$WORK/t/docs/wire-formats.md"
check "a missing index fails" expect fail "wire-formats.md does not exist"

check_summary
