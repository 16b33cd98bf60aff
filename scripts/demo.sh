#!/usr/bin/env bash
# make demo: a tracker, two seeders (testdata/peer1, testdata/peer2) and a client with an empty
# folder, all on 127.0.0.1 with free ports. The client fetches both torrents from both seeders
# at once (the summary shows each seeder's share);
# every file is compared byte for byte; every process started here is stopped on the way out,
# also when something fails.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-target/release/piecemeal}
WORK=target/demo
TIMEOUT=${DEMO_TIMEOUT:-120}
rm -rf "$WORK" && mkdir -p "$WORK/client"

pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start NAME ARGS...: runs piecemeal in the background, stdout and stderr in $WORK/NAME.*
start() {
  local name=$1; shift
  "$BIN" "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" &
  pids+=($!)
}

# wait_line NAME PATTERN [COUNT]: waits until NAME's stdout has COUNT lines matching PATTERN.
wait_line() {
  local name=$1 pattern=$2 count=${3:-1} waited=0
  until [ "$(grep -c "$pattern" "$WORK/$name.out" 2>/dev/null)" -ge "$count" ]; do
    if [ $waited -ge $((TIMEOUT * 10)) ]; then
      echo "demo: $name did not print '$pattern' within ${TIMEOUT}s; its log:" >&2
      tail -n 20 "$WORK/$name.err" >&2
      exit 1
    fi
    sleep 0.1; waited=$((waited + 1))
  done
}

addr_of() { grep -m1 "listening on" "$WORK/$1.out" | awk '{print $NF}'; }

start tracker tracker --bind 127.0.0.1:0 --interval 10
wait_line tracker "listening on"
URL="http://$(addr_of tracker)/announce"
echo "tracker  $URL"
TORRENTS=(--torrent testdata/file.torrent --torrent testdata/folder.torrent)
# Each seeder's upload is capped, as a home uplink would be: on loopback the first connection up
# would otherwise fetch these few megabytes alone before the second is open.
SEEDER_RATE=${SEEDER_RATE:-4M}
for n in 1 2; do
  start "peer$n" peer --dir "testdata/peer$n" --bind 127.0.0.1 --port 0 --tracker "$URL" \
    --max-upload-rate "$SEEDER_RATE" "${TORRENTS[@]}"
  wait_line "peer$n" "^seeding" 2
  echo "peer$n    $(addr_of "peer$n") seeding testdata/peer$n, upload capped at $SEEDER_RATE/s"
done

start client peer --dir "$WORK/client" --bind 127.0.0.1 --port 0 --tracker "$URL" "${TORRENTS[@]}"
wait_line client "^complete" 2
echo "client   $(addr_of client) downloaded into $WORK/client"

diff -r -x .piecemeal testdata/peer1 "$WORK/client" >/dev/null || { echo "demo: downloaded files differ from testdata/peer1" >&2; exit 1; }
echo
echo "summary (every file identical to the seeders' copies; what each seeder sent):"
p1=$(addr_of peer1); p2=$(addr_of peer2)
sources=0
while read -r _ hash name rest; do
  field() { tr ' ' '\n' <<<"$rest" | sed -n "s/^$1=//p"; }
  bytes=$(field bytes)
  printf '  %-10s %9d bytes in %6ss = %7s MB/s\n' "$name" "$bytes" "$(field secs)" "$(field mbps)"
  # peers=ADDR=BYTES,... and pieces=ADDR=N,...: one line per seeder.
  for entry in $(tr ',' ' ' <<<"$(field peers)"); do
    addr=${entry%=*} got=${entry##*=}
    who=$addr; [ "$addr" = "$p1" ] && who=peer1; [ "$addr" = "$p2" ] && who=peer2
    pieces=$(tr ',' '\n' <<<"$(field pieces)" | sed -n "s/^$addr=//p")
    printf '      from %-6s %9d bytes %3d%%  %4d pieces\n' "$who" "$got" $((got * 100 / bytes)) "$pieces"
    [ "$got" -gt 0 ] && sources=$((sources + 1))
  done
done < <(grep "^complete" "$WORK/client.out")
if [ "$sources" -ge 4 ]; then
  echo "both seeders served both torrents at once"
else
  echo "note: not every torrent came from both seeders this time (a race at start-up)"
fi

# The client keeps seeding until stopped; stop it as Ctrl-C would and check it exits cleanly.
kill -INT "${pids[3]}"
wait "${pids[3]}" || { echo "demo: client did not exit cleanly on Ctrl-C" >&2; exit 1; }
echo "client stopped cleanly (announced 'stopped'); demo OK"
