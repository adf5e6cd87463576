#!/usr/bin/env python3
"""A scripted swarm member for tests/cli/cases/89-swarm.sh (SPEC §6.3).

It reads the call object of one swarm call on stdin ({"task", "role",
"round", "phase", "proposals", ...}) and answers by phase. The script comes
from the member's config_overrides, which the swarm merges into every
call:

  answers     consensus: the proposal of round r is answers[r-1] (the last
              one once the list runs out)
  follow      consensus, from round 2: propose the value most members
              proposed last round (ties: the earliest), instead of answers
  plan        hierarchical leader: the subtasks of every round
  done_round  hierarchical leader: the round whose aggregate says done
  bid         marketplace: the bid
  sleep       seconds to sleep before answering
  fail        exit 1 with this message on stderr
  bad         answer {} (no proposal, no bid, no subtasks)

Every call logs one stderr line "call PHASE ROLE ROUND" (a node.log event),
so that a test can see the order of the calls.
"""
import json
import sys
import time


def most_common(proposals):
    best, best_n = None, 0
    for p in proposals:
        n = sum(1 for q in proposals if q["proposal"] == p["proposal"])
        if n > best_n:
            best, best_n = p["proposal"], n
    return best


def answer(c):
    phase, rnd = c["phase"], c["round"]
    if c.get("bad"):
        return {}
    if phase == "propose":
        if c.get("follow") and c["proposals"]:
            return {"proposal": most_common(c["proposals"])}
        answers = c.get("answers", [c["role"]])
        return {"proposal": answers[min(rnd, len(answers)) - 1]}
    if phase == "plan":
        return {"subtasks": c.get("plan", [])}
    if phase == "work":
        return {"proposal": "%s did %s" % (c["role"], c["task"])}
    if phase == "aggregate":
        text = "; ".join("%s: %s" % (r["role"], r["proposal"])
                         for r in c["results"])
        return {"proposal": "round %d: %s" % (rnd, text),
                "done": rnd >= c.get("done_round", 1)}
    if phase == "bid":
        return {"bid": c.get("bid", 1)}
    if phase == "execute":
        return {"proposal": {"by": c["role"], "task": c["task"],
                             "bids": c["bids"]}}
    raise SystemExit("unknown phase %r" % phase)


def main():
    c = json.loads(sys.stdin.readline())
    print("call %s %s %d" % (c["phase"], c["role"], c["round"]),
          file=sys.stderr, flush=True)
    if c.get("sleep"):
        time.sleep(c["sleep"])
    if c.get("fail"):
        print(c["fail"], file=sys.stderr)
        sys.exit(1)
    json.dump(answer(c), sys.stdout)


if __name__ == "__main__":
    main()
