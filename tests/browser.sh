#!/usr/bin/env bash
# The HTML report in a real browser: Debian's chromium, headless, offline.
#
#   bash tests/browser.sh [OUT_DIR]
#
# Writes the close family's page (`sockconf run --html`) and a two-report page (`sockconf report
# --html`: tests/fixtures/close_captured.json beside a copy whose close.fin_then_eof has its FIN
# replaced by a RST), opens each in headless Chromium with every host name unresolvable, and
# fails when
#   - the screenshot is blank (fewer than 1% of its pixels differ from the page's background),
#   - the console shows any message (the page has no script, so anything there is an error),
#   - the page asked the network for anything (Chromium's net log; its own background requests
#     to Google's update and account services are left out),
#   - the rendered DOM lacks a section, or a drawn ladder, for a case the run had.
# Each detector is first shown a page made to trip it, so that a detector that cannot fire does
# not pass silently. Installs chromium (and python3, which reads the PNG) when missing, as root.
set -euo pipefail
cd "$(dirname "$0")/.."

out=${1:-target/browser}
mkdir -p "$out"
out=$(cd "$out" && pwd)

if ! command -v chromium >/dev/null || ! command -v python3 >/dev/null; then
    echo "tests/browser.sh: installing chromium and python3"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium python3 >/dev/null
fi

# `open_page PAGE NAME WIDTH,HEIGHT`: one headless run that leaves the screenshot in
# $out/NAME.png, the console on $out/NAME.log, the net log in $out/NAME.netlog.json and the
# rendered DOM in $out/NAME.dom.html.
open_page() {
    local page=$1 name=$2 size=$3 profile
    profile=$(mktemp -d)
    timeout 120 chromium --headless --no-sandbox --disable-gpu --disable-background-networking \
        --disable-component-update --disable-sync --no-first-run --hide-scrollbars \
        --disable-extensions --host-resolver-rules="MAP * ~NOTFOUND" \
        --user-data-dir="$profile" --enable-logging=stderr --v=0 \
        --log-net-log="$out/$name.netlog.json" --window-size="$size" \
        --screenshot="$out/$name.png" --dump-dom "file://$page" \
        >"$out/$name.dom.html" 2>"$out/$name.log" || true
    rm -rf "$profile"
}

# Whether the screenshot has ink: at least 1% of its pixels differ from the top-left one (the
# page's background). Reads the PNG with Python's zlib alone, and stops at the first row where
# it has seen enough, since a rendered page has ink near its top.
ink() {
    python3 - "$1" <<'PY'
import struct, sys, zlib
data = open(sys.argv[1], "rb").read()
assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
pos, idat = 8, b""
while pos < len(data):
    length, kind = struct.unpack(">I4s", data[pos:pos + 8])
    body = data[pos + 8:pos + 8 + length]
    if kind == b"IHDR":
        width, height, depth, colour = struct.unpack(">IIBB", body[:10])
        assert depth == 8 and colour in (2, 6), f"PNG colour type {colour}, depth {depth}"
        bpp = 3 if colour == 2 else 4
    elif kind == b"IDAT":
        idat += body
    pos += 12 + length
raw, stride = zlib.decompress(idat), width * bpp
needed, inked, background = width * height // 100, 0, None
prev = bytearray(stride)
for y in range(height):
    kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
    if kind == 2:
        line = bytearray((x + b) & 255 for x, b in zip(line, prev))
    elif kind != 0:
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], (prev[i - bpp] if i >= bpp else 0)
            if kind == 1: line[i] = (line[i] + a) & 255
            elif kind == 3: line[i] = (line[i] + (a + b) // 2) & 255
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
    if background is None:
        background = bytes(line[:3])
    inked += sum(1 for i in range(0, stride, bpp) if line[i:i + 3] != background)
    if inked >= needed:
        print("ink")
        break
    prev = line
else:
    print(f"blank: {inked} of {width * height} pixels differ from the background")
PY
}

# `check NAME SECTIONS`: the page NAME rendered, with SECTIONS case sections; prints why not.
check() {
    local name=$1 sections=$2 why=()
    local ink
    ink=$(ink "$out/$name.png" 2>&1)
    [ "$ink" = ink ] || why+=("screenshot: $ink")
    if grep -q 'CONSOLE' "$out/$name.log"; then
        why+=("console: $(grep 'CONSOLE' "$out/$name.log" | head -3 | tr '\n' ' ')")
    fi
    local fetched
    fetched=$(grep -o '"url":"[^"]*"' "$out/$name.netlog.json" 2>/dev/null | sort -u |
        grep -v -E '"url":"(file:|data:|chrome)|//[a-z0-9.-]*(google\.com|googleapis\.com|gstatic\.com)[:/]' || true)
    if [ -n "$fetched" ]; then
        why+=("fetched: $(echo "$fetched" | head -3 | tr '\n' ' ')")
    fi
    local found ladders
    found=$(grep -o '<section id="[^"]*" class="case' "$out/$name.dom.html" | wc -l)
    ladders=$(grep -o '<svg [^>]*class="ladder observed' "$out/$name.dom.html" | wc -l)
    if [ "$sections" != "-" ] && { [ "$found" != "$sections" ] || [ "$ladders" -lt "$sections" ]; }; then
        why+=("rendered $found case sections and $ladders observed ladders, expected $sections of each")
    fi
    printf '%s\n' "${why[@]}"
}

cargo build --quiet
bin=target/debug/sockconf

echo "tests/browser.sh: the detectors fire on pages made to trip them"
printf '<!DOCTYPE html><html><head><title>t</title></head><body></body></html>\n' >"$out/blank.html"
printf '<!DOCTYPE html><html><body><h1>%s</h1><script>console.error("tripped")</script></body></html>\n' \
    "$(printf 'console %.0s' {1..40})" >"$out/console.html"
printf '<!DOCTYPE html><html><body><h1>%s</h1><img src="http://fetched.invalid/x.png"/></body></html>\n' \
    "$(printf 'fetch %.0s' {1..40})" >"$out/fetch.html"
for trap in blank console fetch; do
    open_page "$out/$trap.html" "$trap" 400,300
    why=$(check "$trap" -)
    case "$trap:$why" in
    blank:*blank:*|console:*console:*|fetch:*fetched:*) echo "  $trap: caught" ;;
    *)
        echo "tests/browser.sh: the $trap detector did not fire (it said: ${why:-nothing})" >&2
        exit 1
        ;;
    esac
done

echo "tests/browser.sh: sockconf run --html $out/close.html close"
status=0
"$bin" run close --html "$out/close.html" >/dev/null || status=$?
[ "$status" -le 1 ] || { echo "sockconf run: exit $status" >&2; exit 1; }
python3 - "$out" <<'PY'
import json, sys
out = sys.argv[1]
report = json.load(open("tests/fixtures/close_captured.json"))
case = next(c for c in report["cases"] if c["id"] == "close.fin_then_eof")
fin = next(s for s in case["segments"] if s["flags"] == "FIN|ACK")
fin["flags"] = "RST|ACK"
report["environment"]["kernel_release"] += " (FIN replaced by RST)"
json.dump(report, open(f"{out}/edited.json", "w"), indent=2)
PY
"$bin" report tests/fixtures/close_captured.json "$out/edited.json" --html "$out/two.html"

failed=0
cases=$("$bin" list | grep -c '^close\.')
fixture_cases=$(grep -c '"id": "close\.' tests/fixtures/close_captured.json)
for page in "close:$cases" "two:$fixture_cases"; do
    name=${page%%:*}
    open_page "$out/$name.html" "$name" 1300,1600
    why=$(check "$name" "${page##*:}")
    if [ -n "$why" ]; then
        echo "tests/browser.sh: $out/$name.html did not render: $why" >&2
        failed=1
    else
        echo "  $name.html: rendered, ${page##*:} cases with their ladders ($out/$name.png)"
    fi
done
exit $failed
