#!/usr/bin/env python3
"""Two tiny tools over a fixed set of notes (SPEC §5.1 protocol: one JSON
object on stdin, one on stdout).

  search  {"query": Q}  -> {"results": [{"id", "title"}...]}  (word match)
  lookup  {"id": I}     -> {"id", "title", "text"}
"""
import json
import sys

NOTES = [
    {"id": "n1", "title": "Event loops",
     "text": "One thread, many sockets: libuv polls and calls back."},
    {"id": "n2", "title": "Agents",
     "text": "An agent asks a model for a step, runs a tool, observes."},
    {"id": "n3", "title": "Retries",
     "text": "Back off exponentially; believe Retry-After when sent."},
]

args = json.load(sys.stdin)
if sys.argv[1] == "search":
    words = set(str(args.get("query", "")).lower().split())
    hits = [{"id": n["id"], "title": n["title"]} for n in NOTES
            if words & set((n["title"] + " " + n["text"]).lower().split())]
    print(json.dumps({"results": hits}))
else:
    note = next((n for n in NOTES if n["id"] == args.get("id")), None)
    if note is None:
        print("no note " + str(args.get("id")), file=sys.stderr)
        sys.exit(1)
    print(json.dumps(note))
