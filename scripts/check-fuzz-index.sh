#!/usr/bin/env bash
# check-fuzz-index.sh [ROOT] — checks the protocol index of docs/wire-formats.md (its
# "## Index" table: format | byte layout | parser | fuzz target | malformed-input test)
# against the tree at ROOT (default: this checkout). It fails when
#   - a row does not have the five cells (a '|' inside a cell breaks the row),
#   - a parser file the index names (a path ending in .c) does not exist,
#   - a row names no fuzz target, or names one that is not tests/fuzz/NAME.c,
#   - a tests/fuzz/fuzz_*.c target is not named in any row,
#   - a test file it names (test_*.c / test_*.sh) is in none of tests/*/,
#   - a .c file of a daemon or app folder (PARSER_DIRS) reads untrusted bytes through the
#     bounded reader or the JSON parser (PARSER_USES) and is not named in a parser cell;
# so a new parser cannot land without its row, its fuzz target and its test. Prints one line
# per problem, then a summary; exits 1 on any problem, 2 when the index is missing.
set -uo pipefail
export LC_ALL=C

ROOT=$(cd "${1:-$(dirname "$0")/..}" && pwd) || exit 2
INDEX="$ROOT/docs/wire-formats.md"
PARSER_DIRS="common visor apps hypervisor messaging-server transport-discovery
             messaging-discovery route-finder setup-node"
# whole words: the bounded reader (common/bytes.h) and the JSON parser (common/json.h)
PARSER_USES='sw_reader_init|sw_reader|sw_json_parse'

problems=0
problem() {
    echo "check-fuzz-index: $*"
    problems=$((problems + 1))
}

[ -f "$INDEX" ] || { echo "check-fuzz-index: $INDEX does not exist" >&2; exit 2; }

# The table rows of the "## Index" section, header and separator left out, as
# "LINE<TAB>row" so that problems can name the line.
rows=$(awk '/^## / { in_index = ($0 == "## Index"); next }
            in_index && /^\|/ { n++; if (n > 2) printf "%d\t%s\n", NR, $0 }' "$INDEX")
[ -n "$rows" ] || { echo "check-fuzz-index: no table under '## Index' in $INDEX" >&2; exit 2; }

named_parsers=""
named_fuzz=""
n_rows=0
while IFS=$'\t' read -r line row; do
    n_rows=$((n_rows + 1))
    IFS='|' read -r -a cell <<<"$row"
    # "| a | b | c | d | e |" splits into "", a..e (the trailing empty field is dropped)
    if [ "${#cell[@]}" -ne 6 ]; then
        problem "docs/wire-formats.md:$line: a row needs 5 cells, this one has $((${#cell[@]} - 1))"
        continue
    fi
    format=$(sed 's/^ *//; s/ *$//' <<<"${cell[1]}")
    parsers=$(grep -oE '[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)+\.c\b' <<<"${cell[3]}")
    fuzz=$(grep -oE '\bfuzz_[a-z0-9_]+' <<<"${cell[4]}")
    tests=$(grep -oE '\btest_[a-z0-9_]+\.(c|sh)\b' <<<"${cell[5]}")
    [ -n "$parsers" ] || problem "docs/wire-formats.md:$line: '$format' names no parser file"
    for f in $parsers; do
        [ -f "$ROOT/$f" ] || problem "docs/wire-formats.md:$line: '$format': parser $f does not exist"
    done
    [ -n "$fuzz" ] || problem "docs/wire-formats.md:$line: '$format' names no fuzz target"
    for t in $fuzz; do
        [ -f "$ROOT/tests/fuzz/$t.c" ] ||
            problem "docs/wire-formats.md:$line: '$format': fuzz target tests/fuzz/$t.c does not exist"
    done
    for t in $tests; do
        compgen -G "$ROOT/tests/*/$t" >/dev/null ||
            problem "docs/wire-formats.md:$line: '$format': test $t is in no tests/*/ folder"
    done
    named_parsers+=" $parsers"
    named_fuzz+=" $fuzz"
done <<<"$rows"

# Every fuzz target is named.
n_fuzz=0
for f in "$ROOT"/tests/fuzz/fuzz_*.c; do
    [ -f "$f" ] || continue
    n_fuzz=$((n_fuzz + 1))
    t=$(basename "$f" .c)
    grep -qxF -- "$t" <<<"$(tr ' ' '\n' <<<"$named_fuzz")" ||
        problem "tests/fuzz/$t.c is not named in the index of docs/wire-formats.md"
done

# Every file that parses untrusted bytes is named.
n_users=0
# shellcheck disable=SC2086 # PARSER_DIRS is a list of words
users=$(cd "$ROOT" && for d in $PARSER_DIRS; do
            [ -d "$d" ] && grep -rlwE --include='*.c' -- "$PARSER_USES" "$d"
        done | sort)
for f in $users; do
    n_users=$((n_users + 1))
    grep -qxF -- "$f" <<<"$(tr ' ' '\n' <<<"$named_parsers")" ||
        problem "$f reads untrusted bytes ($(grep -owE -- "$PARSER_USES" "$ROOT/$f" | sort -u | tr '\n' ' ' |
                 sed 's/ $//')) but is not named in the index of docs/wire-formats.md"
done

if [ "$problems" -ne 0 ]; then
    echo "check-fuzz-index: $problems problem(s); docs/wire-formats.md \"The check\" says what each row needs"
    exit 1
fi
echo "check-fuzz-index: ok: $n_rows formats, $n_fuzz fuzz targets, $n_users parser files named"
