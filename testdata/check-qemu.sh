#!/bin/sh
# Run every guest under QEMU (reference behaviour; not used by CI).
# A test passes when QEMU exits with status 1 (isa-debug-exit value 0) and
# the serial output contains "PASS <name>".  Usage: check-qemu.sh [name...]
# seglimits is expected to fail under QEMU TCG, which does not check segment
# limits/rights on memory accesses (reported as XFAIL, not counted); it
# passes under Bochs: tools/bochs/run-bochs.sh guests/seglimits.bin
cd "$(dirname "$0")"
QEMU=${QEMU:-qemu-system-i386}
COMMON="-device isa-debug-exit,iobase=0xf4,iosize=4 -serial stdio -display none -no-reboot -m 128"
fails=0
run() { # name, kind, file
    out=$(timeout 20 $QEMU $2 "$3" $COMMON 2>&1 </dev/null); rc=$?
    if [ $rc -eq 1 ] && printf '%s' "$out" | grep -q "^PASS $1"; then
        echo "PASS $1"
    elif [ "$1" = seglimits ]; then
        echo "XFAIL $1 (QEMU TCG does not enforce segment limits; passes under Bochs): $(printf '%s' "$out" | tr -d '\r' | grep FAIL | head -1)"
    else
        echo "FAIL $1 (exit $rc): $(printf '%s' "$out" | tr -d '\r' | grep -E 'PASS|FAIL' | head -3)"
        fails=$((fails+1))
    fi
}
want() { [ $# -eq 0 ] && return 0; for w in $ARGS; do [ "$w" = "$1" ] && return 0; done; return 1; }
ARGS="$*"
for bin in guests/*.bin; do
    n=$(basename "$bin" .bin)
    [ "$n" = demo ] && continue
    [ -n "$ARGS" ] && ! want "$n" && continue
    run "$n" -kernel "$bin"
done
for rom in bios/*.rom; do
    [ -e "$rom" ] || continue
    n=$(basename "$rom" .rom)
    [ -n "$ARGS" ] && ! want "$n" && continue
    run "$n" "-machine pc -bios" "$rom"
done
if [ -z "$ARGS" ]; then
  for bin in bench/*.bin; do
    [ -e "$bin" ] || continue
    n=$(basename "$bin" .bin)
    start=$(date +%s.%N)
    out=$(timeout 60 $QEMU -kernel "$bin" $COMMON 2>&1 </dev/null); rc=$?
    end=$(date +%s.%N)
    t=$(echo "$end - $start" | bc)
    line=$(printf '%s' "$out" | tr -d '\r' | grep -E 'checksum' | tail -1)
    if [ $rc -eq 1 ]; then echo "BENCH $n ok ${t}s: $line"; else echo "BENCH $n FAIL (exit $rc): $line"; fails=$((fails+1)); fi
  done
fi
echo "failures: $fails"
[ $fails -eq 0 ]
