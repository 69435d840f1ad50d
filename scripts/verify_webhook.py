#!/usr/bin/env python3
"""Verifies a wxbridge webhook, as a partner's endpoint does (standard library only).

  verify_webhook.py SECRET TIMESTAMP SIGNATURE < body

SECRET is the partner's signing_secret; TIMESTAMP and SIGNATURE are the values of the
X-Wxbridge-Timestamp and X-Wxbridge-Signature headers; the body is read raw from stdin.
Exits 0 when the signature holds and the timestamp is within 5 minutes, 1 otherwise.
"""

import hashlib
import hmac
import sys
import time


def verify(secret: bytes, timestamp: str, signature: str, body: bytes, tolerance: int = 300) -> bool:
    if not signature.startswith("v1=") or abs(time.time() - int(timestamp)) > tolerance:
        return False
    expected = hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature[3:])


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    ok = verify(sys.argv[1].encode(), sys.argv[2], sys.argv[3], sys.stdin.buffer.read())
    print("valid" if ok else "invalid")
    sys.exit(0 if ok else 1)
