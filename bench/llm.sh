#!/bin/sh
# The engine's added cost per LLM call (part of `make bench`): N `llm`
# nodes against the local Chat Completions server (tests/support/
# chat_server.py), C at a time (max_parallel and the llm pool), against
# the same N requests sent by a bare libcurl-multi program (bench_curl_multi)
# at the same concurrency; then the peak RSS of `ice run` with 200
# requests held in flight at once. Medians of 5, interleaved.
set -eu
BUILD=${1:-build}
N=${2:-1000}
C=${3:-16}
python3 - "$BUILD" "$N" "$C" <<'PY'
import json, os, re, resource, statistics, subprocess, sys, tempfile, time
build, n, c = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
tmp = tempfile.mkdtemp()

def server(*extra):
    port = os.path.join(tmp, "port%d" % time.monotonic_ns())
    p = subprocess.Popen([sys.executable, "tests/support/chat_server.py",
                          "--port-file", port, *extra])
    while not os.path.exists(port) or not open(port).read().strip():
        time.sleep(0.02)
    return p, "http://127.0.0.1:%s/v1" % open(port).read().strip()

srv, url = server()
env = dict(os.environ, OPENAI_API_KEY="sk-bench", OPENAI_BASE_URL=url)
wf = os.path.join(tmp, "llm.json")
with open(wf, "w") as f:
    json.dump({"max_parallel": c, "pools": {"llm": c}, "llm": {"model": "m"},
               "nodes": [{"id": "n%d" % i, "type": "llm", "prompt": "hello %d" % i}
                         for i in range(n)]}, f)
body = json.dumps({"model": "m", "messages": [{"role": "user", "content": "hello 1"}],
                   "temperature": 0.7})
ice_t, curl_t, ice_cpu, curl_cpu = [], [], [], []

def cpu():
    u = resource.getrusage(resource.RUSAGE_CHILDREN)
    return u.ru_utime + u.ru_stime

for _ in range(5):
    t, c0 = time.perf_counter(), cpu()
    subprocess.run([os.path.join(build, "ice"), "run", wf, "--no-store"],
                   env=env, stdout=subprocess.DEVNULL, check=True)
    ice_t.append(time.perf_counter() - t)
    ice_cpu.append(cpu() - c0)
    t, c0 = time.perf_counter(), cpu()
    subprocess.run([os.path.join(build, "bench_curl_multi"),
                    url + "/chat/completions", str(n), str(c), body],
                   stdout=subprocess.DEVNULL, check=True)
    curl_t.append(time.perf_counter() - t)
    curl_cpu.append(cpu() - c0)
srv.kill()
mi, mc = statistics.median(ice_t), statistics.median(curl_t)
print(f"{'llm: ice run, %d nodes' % n:26} {mi * 1e3:8.1f} ms  ({mi * 1e6 / n:.0f} us/call, {c} in flight)")
print(f"{'llm: bare curl-multi':26} {mc * 1e3:8.1f} ms  ({mc * 1e6 / n:.0f} us/call)")
ci, cc = statistics.median(ice_cpu), statistics.median(curl_cpu)
print(f"{'llm: CPU per call':26} ice {ci * 1e6 / n:.0f} us, bare curl-multi "
      f"{cc * 1e6 / n:.0f} us: the engine adds {(ci - cc) * 1e6 / n:.0f} us of "
      "CPU per call (load, validate, render, JSON, pool, print); the wall "
      "times are the server's")
srv, url = server("--hold-until", "200")
env["OPENAI_BASE_URL"] = url
with open(wf, "w") as f:
    json.dump({"max_parallel": 200, "pools": {"llm": 200}, "llm": {"model": "m"},
               "nodes": [{"id": "n%d" % i, "type": "llm", "prompt": "[[hold]] %d" % i}
                         for i in range(200)]}, f)
r = subprocess.run(["/usr/bin/time", "-f", "%M", os.path.join(build, "ice"), "run",
                    wf, "--no-store"], env=env, stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE, text=True, check=True)
srv.kill()
print(f"{'llm: 200 in flight':26} peak RSS {int(r.stderr.strip().splitlines()[-1]) / 1024:.1f} MB")
PY
