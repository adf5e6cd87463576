#!/usr/bin/env python3
"""A small text toolkit used by examples/pipeline.yaml as a process tool.

Protocol (SPEC §5.1): one JSON object on stdin, one JSON value on stdout,
progress on stderr (it becomes node.log events). The `op` argument picks:

  corpus   {"op": "corpus", "topic": T}      -> {"topic", "documents": [...]}
  stats    {"op": "stats", "documents": [...]} -> {"documents", "words", "top_words"}
  outline  {"op": "outline", "topic", "documents", "top_words", "style"}
                                             -> {"title", "bullets": [...]}
"""
import json
import re
import sys
from collections import Counter

# A tiny built-in corpus so the demo needs no network.
CORPUS = {
    "agents": [
        ("What is an agent", "An agent is a program that uses a language model to "
         "decide which tool to call next, observes the result and repeats until the "
         "task is done."),
        ("Tools", "Agents act through tools: search, code execution, databases. "
         "Good tools have small typed inputs and return structured JSON."),
        ("Workflows versus agents", "A workflow fixes the order of steps ahead of "
         "time; an agent chooses the order at run time. Most production systems "
         "mix both: a workflow with a few agent steps."),
        ("Reliability", "Agent steps fail in new ways, so retries, timeouts and "
         "clear failure policies matter more than in classic pipelines."),
    ],
}
GENERIC = [
    ("Overview", "This topic has no curated notes yet; the pipeline still runs "
     "end to end and reports what it found."),
]
STOP = set("a an the and or of to in on is are that which with by for as at it "
           "so than more most have has be until next".split())


def corpus(args):
    topic = str(args.get("topic", "")).strip().lower()
    docs = CORPUS.get(topic, GENERIC)
    print("corpus: %d documents for %r" % (len(docs), topic), file=sys.stderr)
    return {"topic": topic,
            "documents": [{"title": t, "text": x} for t, x in docs]}


def stats(args):
    docs = args["documents"]
    words = [w for d in docs for w in re.findall(r"[a-z]+", d["text"].lower())]
    top = [w for w, _ in Counter(w for w in words if w not in STOP).most_common(5)]
    return {"documents": len(docs), "words": len(words), "top_words": top}


def outline(args):
    bullets = [d["title"] + ": " + d["text"].split(". ")[0].rstrip(".") + "."
               for d in args["documents"]]
    if args.get("style") == "brief":
        bullets = bullets[:2]
    return {"title": "Notes on %s (keywords: %s)" % (
        args["topic"], ", ".join(args["top_words"])), "bullets": bullets}


def main():
    args = json.load(sys.stdin)
    ops = {"corpus": corpus, "stats": stats, "outline": outline}
    op = args.get("op")
    if op not in ops:
        print("unknown op %r" % op, file=sys.stderr)
        return 2
    json.dump(ops[op](args), sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
