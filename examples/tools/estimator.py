#!/usr/bin/env python3
"""A planning-poker estimator for examples/swarm-consensus.yaml.

Protocol (SPEC §5.1, §6.3): one swarm call on stdin, {"task", "role",
"round", "phase", "proposals", ...config_overrides}; one JSON object on
stdout; lines on stderr become node.log events.

  round 1   {"proposal": first}: the member's own first guess (the
            config_override `first`, in story points)
  round k   the member moves one card toward the median of the previous
            round's proposals: {"proposal": card}

Cards: 1, 2, 3, 5, 8, 13, 21. Members that disagree thus converge on the
median card a round or two later (the Delphi method).
"""
import json
import sys

CARDS = [1, 2, 3, 5, 8, 13, 21]


def nearest(points):
    return min(CARDS, key=lambda c: (abs(c - points), c))


def estimate(call):
    mine = nearest(call.get("first", 5))
    previous = [p["proposal"] for p in call.get("proposals", [])
                if p["proposal"] in CARDS]
    if previous:
        for p in call["proposals"]:
            if p["role"] == call["role"] and p["proposal"] in CARDS:
                mine = p["proposal"]
        median = sorted(previous)[len(previous) // 2]
        step = (CARDS.index(median) > CARDS.index(mine)) - \
            (CARDS.index(median) < CARDS.index(mine))
        mine = CARDS[CARDS.index(mine) + step]
    print("%s, round %d: %d points for %r" % (call["role"], call["round"],
                                              mine, call["task"]),
          file=sys.stderr)
    return {"proposal": mine}


def main():
    call = json.loads(sys.stdin.read() or "{}")
    json.dump(estimate(call), sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
