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


def criterion_per_second(name):
    path = os.path.join(ROOT, "target", "criterion", "open_push", name, "new", "estimates.json")
    with open(path, encoding="utf-8") as f:
        return 1e9 / json.load(f)["median"]["point_estimate"]


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
    # The figures are the product; BENCH_ENFORCE=1 turns a missed target into a failure.
    return 1 if os.environ.get("BENCH_ENFORCE") == "1" and not met else 0


if __name__ == "__main__":
    sys.exit(main())
