# Runs one stage of a long build calmly: one line per stage with its elapsed time, the tool's
# own output kept in a log file that a failure points to (and shows the end of). On a terminal
# the line counts the seconds in place; in a CI log it is one line when the stage starts and
# one when it ends. Sourced by the Go build scripts of the test tools.
#
#   run_stage <prefix> <step> <label> <log file> <command...>
#   e.g. run_stage testcp 1/3 "downloading Go modules" "$log" go mod download
run_stage() {
  local prefix="$1" step="$2" label="$3" log="$4"
  shift 4
  local start=$SECONDS status=0 pid
  mkdir -p "$(dirname "$log")"
  echo "== $prefix [$step] $label ($(date -u +%FT%TZ))" >>"$log"
  if [[ -t 1 ]]; then
    "$@" >>"$log" 2>&1 &
    pid=$!
    while kill -0 "$pid" 2>/dev/null; do
      printf '\r%s: [%s] %s… %ds ' "$prefix" "$step" "$label" $((SECONDS - start))
      sleep 1
    done
    wait "$pid" || status=$?
    printf '\r\033[K'
  else
    echo "$prefix: [$step] $label…"
    "$@" >>"$log" 2>&1 || status=$?
  fi
  if [[ $status -ne 0 ]]; then
    echo "$prefix: [$step] $label failed after $((SECONDS - start))s; the output is in $log, ending with:" >&2
    tail -n 20 "$log" | sed 's/^/  | /' >&2
    return "$status"
  fi
  echo "$prefix: [$step] $label: done in $((SECONDS - start))s"
}
