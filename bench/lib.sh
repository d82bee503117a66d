# shellcheck shell=bash
# Shared by the benchmark scripts that classify through a local server. Source it after setting
# BIN (build/bin), model (the artifact) and work (a scratch directory whose *.pid files the
# caller's EXIT trap kills).

# start_server NAME FLAGS...: starts argserve on free ports with FLAGS, its log in
# $work/NAME.log and pid in $work/NAME.pid (it may run in a command substitution), waits until it
# serves and prints its gRPC port; exits when it stops before that.
start_server() {
  local name="$1"; shift
  # shellcheck disable=SC2154  # set by the sourcing script
  "$BIN/argserve" --model="$model" --address=127.0.0.1:0 --metrics_address= \
    --port_file="$work/$name.ports" "$@" > /dev/null 2> "$work/$name.log" &
  local pid=$!
  echo "$pid" > "$work/$name.pid"
  until [ -s "$work/$name.ports" ]; do
    if ! kill -0 "$pid" 2> /dev/null; then
      echo "argserve ($name) stopped before serving:" >&2
      tail -5 "$work/$name.log" >&2
      exit 1
    fi
    sleep 0.1
  done
  sed -n 's/.*grpc=\([0-9]*\).*/\1/p' "$work/$name.ports"
}

# stop_server NAME: stops the server start_server started as NAME.
stop_server() {
  kill "$(cat "$work/$1.pid")"
  rm -f "$work/$1.pid"
}
