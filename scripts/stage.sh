# Runs one stage of a long build calmly: one line per stage with its elapsed time and the time
# it is expected to take, the tool's own output kept in a log file that a failure points to (and
# shows the end of). On a terminal a progress bar fills in place; in a CI log it is a line when
# the stage starts, a line every two minutes while it runs (STAGE_HEARTBEAT_SECONDS), and a line
# when it ends. Sourced by the Go build scripts of the test tools.
#
#   run_stage <prefix> <step> <label> <log file> <expected seconds> <command...>
#   e.g. run_stage testcp 1/3 "downloading Go modules" "$log" 10 go mod download
#
# <expected seconds> is what the stage takes on a first build (cold Go caches, two cores);
# 0 when unknown. Each successful stage records how long it took next to the log
# (<log without .log>.timings), and later builds expect that instead: a rebuild with warm
# caches is faster, and another machine is faster or slower.

# "45s", "3m05s".
stage_duration() {
  local s=$1
  if ((s < 60)); then printf '%ds' "$s"; else printf '%dm%02ds' $((s / 60)) $((s % 60)); fi
}

# "about 40s", "about 6 min": an estimate, rounded as one.
stage_about() {
  local s=$1
  if ((s < 60)); then
    printf 'about %ds' "$s"
  elif ((s < 90)); then
    printf 'about %ds' $(((s + 5) / 10 * 10))
  else
    printf 'about %d min' $(((s + 30) / 60))
  fi
}

# The timings file that goes with a log file.
stage_timings_file() {
  printf '%s.timings' "${1%.log}"
}

# The expected seconds of a step: the last successful build's, else the given first-build figure.
stage_expected() {
  local timings="$1" step="$2" first="$3" recorded=""
  [[ -f "$timings" ]] && recorded="$(awk -v s="$step" '$1 == s { print $2 }' "$timings" | tail -n 1)"
  if [[ "$recorded" =~ ^[0-9]+$ ]]; then echo "$recorded"; else echo "$first"; fi
}

# The whole build's expected seconds: `stage_expected_total <log> <step> <first> [<step> <first>...]`.
stage_expected_total() {
  local timings total=0
  timings="$(stage_timings_file "$1")"
  shift
  while (($# >= 2)); do
    total=$((total + $(stage_expected "$timings" "$1" "$2")))
    shift 2
  done
  echo "$total"
}

stage_record() {
  local timings="$1" step="$2" seconds="$3" kept=""
  [[ -f "$timings" ]] && kept="$(awk -v s="$step" '$1 != s' "$timings")"
  { [[ -n "$kept" ]] && printf '%s\n' "$kept"; printf '%s %s\n' "$step" "$seconds"; } >"$timings.tmp"
  mv "$timings.tmp" "$timings"
}

# The terminal's progress line: a bar filled by elapsed / expected, the elapsed time and the estimate.
stage_bar() {
  local elapsed=$1 expected=$2 width=24 filled
  if ((expected <= 0)); then
    printf '%s' "$(stage_duration "$elapsed")"
    return
  fi
  filled=$((elapsed * width / expected))
  ((filled > width)) && filled=$width
  printf '[%s%s] %s of %s' \
    "$(printf '%*s' "$filled" '' | tr ' ' '#')" "$(printf '%*s' $((width - filled)) '' | tr ' ' '.')" \
    "$(stage_duration "$elapsed")" "$(stage_about "$expected")"
}

run_stage() {
  local prefix="$1" step="$2" label="$3" log="$4" first="$5"
  shift 5
  local every="${STAGE_HEARTBEAT_SECONDS:-120}" start=$SECONDS status=0 pid elapsed expected timings estimate=""
  local heartbeat=$every terminal=0
  timings="$(stage_timings_file "$log")"
  expected="$(stage_expected "$timings" "$step" "$first")"
  ((expected > 0)) && estimate=" ($(stage_about "$expected"))"
  mkdir -p "$(dirname "$log")"
  echo "== $prefix [$step] $label ($(date -u +%FT%TZ))" >>"$log"
  [[ -t 1 ]] && terminal=1
  ((terminal)) || echo "$prefix: [$step] $label…$estimate"
  "$@" >>"$log" 2>&1 &
  pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    elapsed=$((SECONDS - start))
    if ((terminal)); then
      printf '\r\033[K%s: [%s] %s %s' "$prefix" "$step" "$label" "$(stage_bar "$elapsed" "$expected")"
    elif ((elapsed >= heartbeat)); then
      echo "$prefix: [$step] $label… $(stage_duration "$elapsed")${estimate:+ of $(stage_about "$expected")}"
      heartbeat=$((heartbeat + every))
    fi
    sleep 0.2
  done
  wait "$pid" || status=$?
  ((terminal)) && printf '\r\033[K'
  elapsed=$((SECONDS - start))
  if [[ $status -ne 0 ]]; then
    echo "$prefix: [$step] $label failed after $(stage_duration "$elapsed"); the output is in $log, ending with:" >&2
    tail -n 20 "$log" | sed 's/^/  | /' >&2
    return "$status"
  fi
  stage_record "$timings" "$step" "$elapsed"
  echo "$prefix: [$step] $label: done in $(stage_duration "$elapsed")"
}
