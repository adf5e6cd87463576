# Helpers of the LLM case files (88-llm.sh, 88a-llm-edges.sh): a Chat
# Completions server of our own per test (tests/support/chat_server.py),
# its counters, and `ice` with the test key and the server's URL.

SRV=$ROOT/tests/support/chat_server.py
KEY=sk-ice-test-SECRET-6f1d2c
mkdir -p "$W/llm" "$W/scripts"

# start_server NAME [ARGS...]: a server of our own; its URL in $URL.
start_server() {
  name=$1
  shift
  rm -f "$W/llm/port-$name"
  python3 "$SRV" --port-file "$W/llm/port-$name" --script-dir "$W/scripts" "$@" &
  BGPIDS="$BGPIDS $!"
  i=0
  while [ ! -s "$W/llm/port-$name" ] && [ $i -lt 100 ]; do
    sleep 0.05
    i=$((i + 1))
  done
  URL=http://127.0.0.1:$(cat "$W/llm/port-$name")/v1
}

# stats URL: the server's counters into $W/out (for expect_json).
stats() {
  python3 -I -S -c 'import sys, urllib.request
print(urllib.request.urlopen(sys.argv[1] + "/stats", timeout=5).read().decode())' "${1%/v1}" >"$W/out"
}

# llm ARGS...: `ice` with the key and the server's URL.
llm() {
  OPENAI_API_KEY=$KEY OPENAI_BASE_URL=$URL ice "$@"
}

