#!/bin/bash
# Run a benchmark on a shared machine without letting it exhaust memory:
#   bench/memory_guard.sh LIMIT_MB MIN_AVAIL_MB LOG cmd...
# runs cmd in its own session and kills the whole session when its summed RSS passes LIMIT_MB or the
# machine's MemAvailable falls under MIN_AVAIL_MB; logs RSS, VSZ and MemAvailable every ~10 s to LOG.
limit=$1; minavail=$2; log=$3; shift 3
setsid "$@" &
pid=$!
peak=0; n=0
while kill -0 $pid 2>/dev/null; do
  read rss vsz < <(ps -o rss=,vsz= --sid $pid | awk '{r+=$1; v+=$2} END {print int(r/1024), int(v/1024)}')
  avail=$(awk '/MemAvailable/ {print int($2/1024)}' /proc/meminfo)
  [ "${rss:-0}" -gt $peak ] && peak=$rss
  n=$((n+1)); [ $((n % 5)) -eq 0 ] && echo "$(date -u +%H:%M:%S) rss_mb=$rss vsz_mb=$vsz avail_mb=$avail peak_mb=$peak" >> $log
  if [ "${rss:-0}" -gt $limit ] || [ "$avail" -lt $minavail ]; then
    echo "$(date -u +%H:%M:%S) KILLED: rss ${rss} MB (limit ${limit}), MemAvailable ${avail} MB (floor ${minavail})" >> $log
    kill -9 -- -$pid; break
  fi
  sleep 2
done
wait $pid; rc=$?
echo "$(date -u +%H:%M:%S) exit rc=$rc peak_rss_mb=$peak" >> $log
exit $rc
