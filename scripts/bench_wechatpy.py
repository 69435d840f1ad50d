#!/usr/bin/env python3
"""The wechatpy baseline for `make bench`: verify + decrypt + parse of the same payloads the
criterion bench used (target/wxbridge-bench/payloads.json), then the ratio against the
criterion medians of the same run.

wechatpy reads XML pushes (WeChatCrypto.decrypt_message, then parse_message). It has no
JSON push parser; for JSON it verifies and decrypts the same way (decrypt_message accepts a
dict) and builds its message class from the decrypted JSON, which is the same work.
"""

import json
import os
import statistics
import sys
import timeit

from wechatpy import parse_message
from wechatpy.crypto import WeChatCrypto
from wechatpy.messages import MESSAGE_TYPES

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def opener(payload):
    crypto = WeChatCrypto(payload["token"], payload["encoding_aes_key"], payload["app_id"])
    q = payload["query"]
    body = payload["body"]

    if payload["format"] == "xml":
        def open_push():
            return parse_message(crypto.decrypt_message(body, q["msg_signature"], q["timestamp"], q["nonce"]))
    else:
        def open_push():
            outer = json.loads(body)
            inner = json.loads(crypto.decrypt_message(outer, q["msg_signature"], q["timestamp"], q["nonce"]))
            return MESSAGE_TYPES[inner["MsgType"]](inner)
    return open_push


def per_second(fn, seconds=1.0, rounds=9):
    """Median of several rounds, each about `seconds` long: the same statistic as the
    criterion median it is compared with."""
    number = 1
    while timeit.timeit(fn, number=number) < seconds / 10:
        number *= 2
    times = timeit.repeat(fn, number=number * 10, repeat=rounds)
    return 1.0 / (statistics.median(times) / (number * 10))


def criterion_ns(group, name):
    path = os.path.join(ROOT, "target", "criterion", group, name, "new", "estimates.json")
    with open(path, encoding="utf-8") as f:
        return json.load(f)["median"]["point_estimate"]


def criterion_per_second(name):
    return 1e9 / criterion_ns("open_push", name)


def floor_ns(fmt):
    """The sum of the raw primitives on the same payload: every part the bench's `floor`
    group timed for this format (`{part}_{fmt}`)."""
    parts = [name for name in os.listdir(os.path.join(ROOT, "target", "criterion", "floor"))
             if name.endswith(f"_{fmt}")]
    return sum(criterion_ns("floor", name) for name in parts)


def main():
    with open(os.path.join(ROOT, "target", "wxbridge-bench", "payloads.json"), encoding="utf-8") as f:
        payloads = json.load(f)
    rows = []
    for payload in payloads:
        open_push = opener(payload)
        message = open_push()
        assert message.type == "text" and "breakfast" in message.content, message
        python_rate = per_second(open_push)
        rust_rate = criterion_per_second(payload["format"])
        rows.append((payload["format"], rust_rate, python_rate))
    print()
    print("verify + decrypt + parse, one encrypted text push (same payloads, same run)")
    print(f"{'format':<8}{'wxbridge /s':>14}{'wechatpy /s':>14}{'ratio':>9}")
    for fmt, rust_rate, python_rate in rows:
        print(f"{fmt:<8}{rust_rate:>14,.0f}{python_rate:>14,.0f}{rust_rate / python_rate:>8.1f}x")
    worst = min(r / p for _, r, p in rows)
    target = float(os.environ.get("BENCH_TARGET_RATIO", "20"))
    met = worst >= target
    print(f"target: at least {target:.0f}x -> {'met' if met else 'NOT met'} (worst {worst:.1f}x)")

    print()
    print("against the floor: SHA-1 + base64 + AES-256-CBC + borrowed parses, same payloads, same run")
    print(f"{'format':<8}{'open_push ns':>14}{'floor ns':>10}{'x floor':>9}{'floor vs wechatpy':>19}")
    floor_target = float(os.environ.get("BENCH_FLOOR_RATIO", "1.3"))
    floor_met = True
    for fmt, rust_rate, python_rate in rows:
        open_ns, floor = 1e9 / rust_rate, floor_ns(fmt)
        floor_met &= open_ns / floor <= floor_target
        print(f"{fmt:<8}{open_ns:>14,.0f}{floor:>10,.0f}{open_ns / floor:>8.2f}x"
              f"{1e9 / floor / python_rate:>18.1f}x")
    print(f"target: at most {floor_target:.1f}x the floor -> {'met' if floor_met else 'NOT met'}")
    # The figures are the product; BENCH_ENFORCE=1 turns a missed target into a failure.
    return 1 if os.environ.get("BENCH_ENFORCE") == "1" and not (met and floor_met) else 0


if __name__ == "__main__":
    sys.exit(main())
