#!/usr/bin/env python3
"""Word counting for examples/map-reduce.yaml and examples/subworkflows/.

Protocol (SPEC §5.1): one JSON object on stdin, one JSON object on stdout;
lines on stderr become node.log events.

  map     {"title": T, "text": S[, "preview_words": N]}
              -> {"title", "words", "lines", "chars", "preview"}
          (`preview`: the first N words, default 5, "..." when cut)
  reduce  run with the argument --reduce:
          {"counts": [{"words", "lines", "chars", ...}, ...]}
              -> {"documents", "words", "lines", "chars", "longest"}
"""
import json
import sys


def count(args):
    text = args.get("text", "")
    words = text.split()
    n = int(args.get("preview_words", 5))
    preview = " ".join(words[:n]) + (" ..." if len(words) > n else "")
    print("counted %d words in %r" % (len(words), args.get("title")),
          file=sys.stderr)
    return {"title": args.get("title"), "words": len(words),
            "lines": len(text.splitlines()), "chars": len(text),
            "preview": preview}


def reduce_counts(args):
    counts = args.get("counts", [])
    longest = max(counts, key=lambda c: c["words"], default=None)
    return {"documents": len(counts),
            "words": sum(c["words"] for c in counts),
            "lines": sum(c["lines"] for c in counts),
            "chars": sum(c["chars"] for c in counts),
            "longest": longest["title"] if longest else None}


def main():
    args = json.loads(sys.stdin.read() or "{}")
    out = reduce_counts(args) if "--reduce" in sys.argv[1:] else count(args)
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
