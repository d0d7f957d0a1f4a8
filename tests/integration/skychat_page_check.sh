#!/usr/bin/env bash
# skychat_page_check.sh URL TEXT... — loads skychat's page (apps/skychat) in headless Chromium
# and checks that every TEXT is in the rendered DOM: the page must render the stored messages
# on load from /messages. Run by tests/integration/test_skychat.c once a message arrived.
# Prints SKIP and exits 0 when Chromium is not installed (scripts/install-deps.sh adds it) or
# cannot start here; exits 1 when the page rendered without the texts.
#
# --virtual-time-budget lets the page's fetches finish before the DOM is dumped; the page
# opens its EventSource 1 s after loading, beyond the budget, so the dump never waits on
# the never-ending /sse stream.
set -uo pipefail

[ $# -ge 2 ] || { echo "usage: $0 URL TEXT..." >&2; exit 2; }
url=$1
shift
bin=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$bin" ]; then
    echo "SKIP: chromium is not installed"
    exit 0
fi

dom=""
for attempt in 1 2 3; do
    profile=$(mktemp -d "${TMPDIR:-/tmp}/sw-chromium.XXXXXX") || exit 1
    dom=$(timeout -k 5 60 "$bin" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
        --disable-background-networking --disable-component-update --disable-sync \
        --disable-dev-shm-usage --user-data-dir="$profile" --virtual-time-budget=500 \
        --dump-dom "$url" 2>"$profile.err")
    errs=$(tail -n 5 "$profile.err")
    rm -rf "$profile" "$profile.err"
    missing=()
    for t in "$@"; do
        grep -qF -- "$t" <<<"$dom" || missing+=("$t")
    done
    if [ ${#missing[@]} -eq 0 ]; then
        echo "ok: the page rendered ${#@} expected text(s) (attempt $attempt)"
        exit 0
    fi
    sleep 1
done
if ! grep -q "<title>" <<<"$dom"; then
    echo "SKIP: chromium produced no DOM here: $errs"
    exit 0
fi
echo "FAIL: the rendered page lacks: ${missing[*]}"
echo "--- DOM (first 3000 bytes)"
head -c 3000 <<<"$dom"
echo
exit 1
