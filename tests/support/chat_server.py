#!/usr/bin/env python3
"""A fake OpenAI Chat Completions server for ice's tests (stdlib only).

    python3 tests/support/chat_server.py --port-file FILE
        [--script-dir DIR] [--hold-until N] [--no-parent-watch]

Binds 127.0.0.1 on a free port, writes the port to FILE once listening,
then serves until killed (or until its parent process dies, unless
--no-parent-watch). HTTP/1.1 with keep-alive.

POST .../chat/completions answers like OpenAI:
  {"id", "object": "chat.completion", "model", "choices": [{"index": 0,
   "message": {"role": "assistant", "content": TEXT}, "finish_reason":
   "stop"}], "usage": {"prompt_tokens", "completion_tokens",
   "total_tokens"}}
A body that is not JSON or has no "messages" gets 400.

Behaviour is chosen by directives anywhere in the LAST user message:
  (none)                  content "echo: " + that message; prompt_tokens =
                          whitespace-separated words over all messages,
                          completion_tokens = words in the answer
  [[reply:TEXT]]          answer exactly TEXT (up to the first "]]")
  [[reply_b64:B64]]       the same, base64-decoded
  [[status:429 retry_after:2]]  that status with an OpenAI-style error body
                          {"error": {"message", "type", ...}}; retry_after
                          adds a Retry-After header (retry_after_date:S
                          sends it as an HTTP date S seconds from now)
  [[fail_first:N status:429 retry_after:0.2]]  the first N requests that
                          carry this exact directive fail like that, later
                          ones answer normally (counted per server process)
  [[sleep:SECONDS]]       wait before answering
  [[hold]]                wait until --hold-until N requests have been in
                          flight at once (or 10 s), then answer
  [[malformed]]           200 with a body that is not JSON
  [[drop]]                close the connection without answering
  [[truncate]]            a Content-Length larger than the body, then close
  [[cost:0.0123]]         add "cost": 0.0123 to usage
  [[script:NAME]]         the k-th request with NAME gets element k of the
                          JSON array of strings in --script-dir/NAME.json
                          (the last one repeats)

Also: GET or POST /stats -> {"requests", "max_in_flight", "in_flight",
"bodies": [the last 50 request bodies], "auth": [for each of those, whether
the Authorization header was "Bearer $CHAT_SERVER_EXPECT_KEY", or, when that
variable is unset, whether there was one]} (never the header itself);
POST /reset zeroes the counters, the fail_first counts and the script
positions.
"""

import argparse
import base64
import email.utils
import http.server
import json
import os
import re
import socket
import sys
import threading
import time

DIRECTIVE = re.compile(r"\[\[([a-z_0-9]+)(?::(.*?))?\]\]", re.S)
KEEP = 50

lock = threading.Lock()
held = threading.Condition(lock)
state = {}
args = None


def reset():
    """Zeroes the counters (requests still in flight stay counted)."""
    live = state.get("in_flight", 0)
    state.update(requests=0, in_flight=live, max_in_flight=live, bodies=[],
                 auth=[], fail_counts={}, script_pos={})


def words(text):
    return len(str(text).split())


def content_text(c):
    return c if isinstance(c, str) else json.dumps(c)


def kv(arg):
    """'429 retry_after:2' -> ('429', {'retry_after': '2'})"""
    first, opts = None, {}
    for tok in (arg or "").split():
        if ":" in tok:
            k, v = tok.split(":", 1)
            opts[k] = v
        elif first is None:
            first = tok
    return first, opts


ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error",
               404: "not_found_error", 429: "rate_limit_exceeded"}


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *a):  # quiet
        pass

    def send_json(self, status, obj, headers=None):
        data = json.dumps(obj).encode()
        self.send_raw(status, data, headers)

    def send_raw(self, status, data, headers=None, length=None):
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length",
                         str(len(data) if length is None else length))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def send_error_json(self, status, message, retry_after=None,
                        retry_after_date=None):
        headers = {}
        if retry_after is not None:
            headers["Retry-After"] = retry_after
        if retry_after_date is not None:
            headers["Retry-After"] = email.utils.formatdate(
                time.time() + float(retry_after_date), usegmt=True)
        etype = ERROR_TYPES.get(status,
                                "server_error" if status >= 500 else "error")
        self.send_json(status, {"error": {"message": message, "type": etype,
                                          "param": None, "code": etype}},
                       headers)

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def stats(self):
        with lock:
            out = {k: state[k] for k in
                   ("requests", "max_in_flight", "in_flight", "bodies",
                    "auth")}
            self.send_json(200, out)

    def do_GET(self):
        if self.path.rstrip("/").endswith("/stats"):
            self.stats()
        else:
            self.send_error_json(404, "not found")

    def do_POST(self):
        raw = self.read_body()
        path = self.path.split("?", 1)[0].rstrip("/")
        if path.endswith("/stats"):
            return self.stats()
        if path.endswith("/reset"):
            with lock:
                reset()
            return self.send_json(200, {"ok": True})
        if not path.endswith("/chat/completions"):
            return self.send_error_json(404, "unknown path " + path)
        key = os.environ.get("CHAT_SERVER_EXPECT_KEY")
        auth = self.headers.get("Authorization")
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        with held:
            state["requests"] += 1
            state["in_flight"] += 1
            state["max_in_flight"] = max(state["max_in_flight"],
                                         state["in_flight"])
            state["bodies"] = (state["bodies"] + [
                body if body is not None else raw.decode("utf-8", "replace")
            ])[-KEEP:]
            state["auth"] = (state["auth"] + [
                auth is not None if key is None
                else auth == "Bearer " + key])[-KEEP:]
            held.notify_all()
        try:
            self.chat(body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up (a timeout)
        except (ValueError, TypeError) as e:  # a directive's bad argument
            self.send_error_json(400, "bad directive: %s" % e)
        finally:
            with lock:
                state["in_flight"] -= 1

    def chat(self, body):
        if not isinstance(body, dict) or not isinstance(
                body.get("messages"), list):
            return self.send_error_json(
                400, "the body must be a JSON object with messages")
        msgs = body["messages"]
        users = [m for m in msgs
                 if isinstance(m, dict) and m.get("role") == "user"]
        last = content_text(users[-1].get("content", "")) if users else ""
        ds = [(m.group(1), m.group(2), m.group(0))
              for m in DIRECTIVE.finditer(last)]
        if not ds and users:
            # An agent's later user messages are tool results: its
            # directives ride in the first one (the prompt).
            first = content_text(users[0].get("content", ""))
            ds = [(m.group(1), m.group(2), m.group(0))
                  for m in DIRECTIVE.finditer(first)]
        d = {name: arg for name, arg, _ in ds}

        if "sleep" in d:
            time.sleep(float(d["sleep"]))
        if "hold" in d:
            # Released as soon as all are in; the deadline only ends a
            # test that failed. Generous: 200 threads of this server and
            # 200 requests of an ASan engine on a loaded machine.
            deadline = time.time() + 30
            with held:
                while (state["max_in_flight"] < args.hold_until
                       and time.time() < deadline):
                    held.wait(deadline - time.time())

        for name, arg, whole in ds:
            if name == "fail_first":
                n, opts = kv(arg)
                with lock:
                    seen = state["fail_counts"].get(whole, 0)
                    state["fail_counts"][whole] = seen + 1
                if seen < int(n):
                    return self.send_error_json(
                        int(opts.get("status", 500)),
                        "failing %d of the first %s" % (seen + 1, n),
                        opts.get("retry_after"), opts.get("retry_after_date"))
        if "status" in d:
            code, opts = kv(d["status"])
            return self.send_error_json(int(code), "status %s asked for" % code,
                                        opts.get("retry_after"),
                                        opts.get("retry_after_date"))
        if "drop" in d:
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if "truncate" in d:
            data = b'{"id": "chatcmpl-truncated", "choices": ['
            self.close_connection = True
            self.send_raw(200, data, length=len(data) + 100)
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if "malformed" in d:
            return self.send_raw(200, b"this is not JSON {")

        if "reply" in d:
            text = d["reply"] or ""
        elif "reply_b64" in d:
            text = base64.b64decode(d["reply_b64"] or "").decode("utf-8")
        elif "script" in d:
            name = d["script"] or ""
            try:
                with open(os.path.join(args.script_dir or ".",
                                       name + ".json")) as f:
                    answers = json.load(f)
                assert isinstance(answers, list) and answers
            except (OSError, ValueError, AssertionError):
                return self.send_error_json(
                    400, "no usable script %s in --script-dir" % name)
            with lock:
                k = state["script_pos"].get(name, 0)
                state["script_pos"][name] = k + 1
            text = content_text(answers[min(k, len(answers) - 1)])
        else:
            text = "echo: " + last

        prompt = sum(words(content_text(m.get("content", "")))
                     for m in msgs if isinstance(m, dict))
        usage = {"prompt_tokens": prompt, "completion_tokens": words(text),
                 "total_tokens": prompt + words(text)}
        if "cost" in d:
            usage["cost"] = float(d["cost"])
        with lock:
            n = state["requests"]
        self.send_json(200, {
            "id": "chatcmpl-%d" % n,
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model") or "fake-model",
            "choices": [{"index": 0,
                         "message": {"role": "assistant", "content": text},
                         "finish_reason": "stop"}],
            "usage": usage,
        })


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024

    def handle_error(self, request, client_address):
        # A client that gave up (a timeout, an abort) resets its connection:
        # expected here, not worth a traceback.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def watch_parent(ppid):
    while os.getppid() == ppid:
        time.sleep(0.5)
    os._exit(0)


def main():
    global args
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--port-file", required=True)
    p.add_argument("--script-dir")
    p.add_argument("--hold-until", type=int, default=1)
    p.add_argument("--no-parent-watch", action="store_true")
    args = p.parse_args()
    reset()
    srv = Server(("127.0.0.1", 0), Handler)
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % srv.server_address[1])
    os.replace(tmp, args.port_file)  # readers never see a partial port
    if not args.no_parent_watch:
        threading.Thread(target=watch_parent, args=(os.getppid(),),
                         daemon=True).start()
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
