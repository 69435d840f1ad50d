"""The local AWS emulator: moto server, serving one DynamoDB request at a time.

moto server answers every request on a thread of its own, and its DynamoDB model is not
safe under concurrent requests: `transact_write_items` (moto/dynamodb/models/__init__.py,
`DynamoDBBackend.transact_write_items`) deep-copies each table it writes to, without a
lock, to roll back on failure, so

- a write landing in the same table during that copy raises `RuntimeError: dictionary
  changed size during iteration`, which moto answers as a bare HTTP 500;
- a transaction cancelled by a condition restores the whole table from that copy, which
  erases every write other requests made to the table in the meantime, acknowledged ones
  included.

DynamoDB applies each request atomically, so the emulator takes DynamoDB's requests one
at a time (a lock around the WSGI application for requests whose X-Amz-Target names
DynamoDB). Everything else — SQS, Secrets Manager, the moto API — is served as moto
serves it. The command line is moto_server's own (`-H HOST -p PORT`).
scripts/tests/test_emulator.py shows both failures on plain moto and neither here.

It also counts the requests it serves by service and operation (`X-Amz-Target`, else the
method and the service named in the path), which `GET /_wxbridge/requests` answers as JSON:
what `make load` reads, before and after a run, for the AWS requests per message.

Two more changes to moto, so that the emulator stays small and stops: its DynamoDB
copies and walks only the items a request names, not the whole table, on each
transaction and query (scripts/moto_dynamodb.py), and SIGTERM or SIGINT ends it at once
(`stopping_at_once`).

And it injects faults for `make faults`: `POST /_wxbridge/inject` with
`{"service": "dynamodb", "delay_ms": [1500, 4000], "fail_share": 0.2, "seconds": 20}`
delays each request of the service (`dynamodb` or `sqs`) by a time drawn from the range
(or by `delay_ms` when it is one number) for the next `seconds`, and answers a share of
them, drawn at random, as the service answers when it is overloaded instead of serving
them: DynamoDB's HTTP 400 `ThrottlingException` or HTTP 500 `InternalServerError`
(`"fail_with"`: `"throttling"`, `"internal"` or `"mixed"`, the default), SQS's HTTP 500
`InternalError`. The delay is taken before the request reaches moto, outside the lock
above, so that delayed requests wait side by side as they would at AWS; a request the
caller gave up on meanwhile is still served, as a request that reached AWS is. `GET
/_wxbridge/inject` answers what is injected and how many requests were delayed and
failed; `"seconds": 0` ends an injection.

  .venv/bin/python scripts/moto_server.py -H 127.0.0.1 -p 5000
"""

import collections
import json
import random
import signal
import sys
import threading
import time

DYNAMODB_TARGET = "DynamoDB_"


def one_dynamodb_request_at_a_time(app):
    """`app` (a WSGI application) with DynamoDB's requests served one at a time."""
    lock = threading.Lock()

    def serialized(environ, start_response):
        if not environ.get("HTTP_X_AMZ_TARGET", "").startswith(DYNAMODB_TARGET):
            return app(environ, start_response)
        with lock:
            # The whole answer is produced under the lock (moto's answers are not streamed).
            return list(app(environ, start_response))

    return serialized


COUNTS_PATH = "/_wxbridge/requests"


def counting_requests(app):
    """`app` with its requests counted by operation, the counts served at COUNTS_PATH."""
    counts = collections.Counter()
    lock = threading.Lock()

    def counted(environ, start_response):
        if environ.get("PATH_INFO") == COUNTS_PATH:
            with lock:
                body = json.dumps(dict(counts)).encode()
            start_response("200 OK", [("Content-Type", "application/json")])
            return [body]
        if environ.get("PATH_INFO", "").startswith("/_wxbridge/"):
            return app(environ, start_response)  # the emulator's own control paths
        operation = environ.get("HTTP_X_AMZ_TARGET") or operation_of_rest_request(environ)
        with lock:
            counts[operation] += 1
        return app(environ, start_response)

    return counted


def operation_of_rest_request(environ):
    """S3 and the moto API name no target: the method and the first part of the path."""
    first = environ.get("PATH_INFO", "/").lstrip("/").split("/", 1)[0]
    kind = "moto-api" if first == "moto-api" else "s3"
    return f"{kind}.{environ.get('REQUEST_METHOD', '?')}"


INJECT_PATH = "/_wxbridge/inject"

# How each service names itself in X-Amz-Target (SQS's JSON protocol; its query protocol
# names the action in the body, and the SDK the functions use speaks JSON).
TARGET_PREFIXES = {"dynamodb": DYNAMODB_TARGET, "sqs": "AmazonSQS."}

# What each service answers when it is overloaded: its HTTP status and JSON error body.
FAILURES = {
    "throttling": (
        "400 Bad Request",
        {
            "__type": "com.amazonaws.dynamodb.v20120810#ThrottlingException",
            "message": "Rate of requests exceeds the allowed throughput.",
        },
    ),
    "internal": (
        "500 Internal Server Error",
        {"__type": "com.amazonaws.dynamodb.v20120810#InternalServerError", "message": "Internal server error"},
    ),
    "sqs": (
        "500 Internal Server Error",
        {"__type": "com.amazonaws.sqs#InternalError", "message": "We encountered an internal error. Please try again."},
    ),
}


class InjectionError(ValueError):
    """A request to /_wxbridge/inject that does not say what to inject."""


class Injection:
    """One fault injected into one service's requests until `until` (a monotonic time)."""

    def __init__(self, spec, now):
        if not isinstance(spec, dict):
            raise InjectionError("expected a JSON object")
        self.service = spec.get("service")
        if self.service not in TARGET_PREFIXES:
            raise InjectionError(f"service: one of {', '.join(sorted(TARGET_PREFIXES))}")
        delay = spec.get("delay_ms", 0)
        if isinstance(delay, (int, float)) and not isinstance(delay, bool):
            delay = [delay, delay]
        if (
            not isinstance(delay, list)
            or len(delay) != 2
            or not all(isinstance(d, (int, float)) and not isinstance(d, bool) and 0 <= d <= 600_000 for d in delay)
            or delay[0] > delay[1]
        ):
            raise InjectionError("delay_ms: milliseconds, or [least, most]")
        self.delay_ms = (float(delay[0]), float(delay[1]))
        self.fail_share = spec.get("fail_share", 0)
        if not isinstance(self.fail_share, (int, float)) or isinstance(self.fail_share, bool) or not 0 <= self.fail_share <= 1:
            raise InjectionError("fail_share: a number from 0 to 1")
        self.fail_with = spec.get("fail_with", "mixed")
        if self.fail_with not in ("throttling", "internal", "mixed"):
            raise InjectionError("fail_with: throttling, internal or mixed")
        seconds = spec.get("seconds")
        if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or not 0 <= seconds <= 3600:
            raise InjectionError("seconds: how long, 0 to 3600")
        self.until = now + seconds
        self.delayed = self.failed = 0

    def describe(self, now):
        return {
            "service": self.service,
            "delay_ms": list(self.delay_ms),
            "fail_share": self.fail_share,
            "fail_with": self.fail_with,
            "seconds_left": max(0.0, round(self.until - now, 3)),
            "delayed": self.delayed,
            "failed": self.failed,
        }

    def failure(self, draw):
        """The (status, body) to answer instead of serving the request."""
        if self.service == "sqs":
            return FAILURES["sqs"]
        if self.fail_with == "mixed":
            return FAILURES["throttling" if draw() < 0.5 else "internal"]
        return FAILURES[self.fail_with]


def injecting_faults(app, clock=time.monotonic, sleep=time.sleep, draw=random.random):
    """`app` with the faults POSTed to INJECT_PATH applied to its requests (module
    docstring). `clock`, `sleep` and `draw` (uniform in [0, 1)) are the tests' to replace."""
    lock = threading.Lock()
    injections = {}  # by service: the latest one

    def answer(start_response, status, body):
        data = json.dumps(body).encode()
        # DynamoDB's and SQS's JSON protocol (the SDK reads the error's type from __type).
        start_response(status, [("Content-Type", "application/x-amz-json-1.0"), ("Content-Length", str(len(data)))])
        return [data]

    def injected(environ, start_response):
        if environ.get("PATH_INFO") == INJECT_PATH:
            now = clock()
            if environ.get("REQUEST_METHOD") == "POST":
                try:
                    length = int(environ.get("CONTENT_LENGTH") or 0)
                    spec = json.loads(environ["wsgi.input"].read(length) or b"null")
                    injection = Injection(spec, now)
                except (ValueError, InjectionError) as error:
                    return answer(start_response, "400 Bad Request", {"error": str(error)})
                with lock:
                    injections[injection.service] = injection
                return answer(start_response, "200 OK", injection.describe(now))
            with lock:
                return answer(start_response, "200 OK", {s: i.describe(now) for s, i in injections.items()})
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        with lock:
            injection = next(
                (
                    i
                    for s, i in injections.items()
                    if target.startswith(TARGET_PREFIXES[s]) and clock() < i.until
                ),
                None,
            )
            if injection is not None:
                least, most = injection.delay_ms
                delay_ms = least + (most - least) * draw()
                fails = draw() < injection.fail_share
                if delay_ms > 0:
                    injection.delayed += 1
                if fails:
                    injection.failed += 1
                    failure = injection.failure(draw)
        if injection is None:
            return app(environ, start_response)
        if delay_ms > 0:
            sleep(delay_ms / 1000)
        if fails:
            status, body = failure
            return answer(start_response, status, body)
        return app(environ, start_response)

    return injected


def stopping_at_once(serve):
    """`serve` (werkzeug's run_simple) with SIGTERM and SIGINT ending the process at once.

    moto's own handler exits through Python (`sys.exit`), which frees every object of the
    emulator's state before the process ends and waits for the main thread to get the
    interpreter first: with gigabytes of state, and threads busy serving, that took over
    40 s. The emulator has nothing to save (its state is in memory, its log written as it
    goes), so the signals take their default action: the kernel ends the process."""

    def serving(*args, **kwargs):
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, signal.SIG_DFL)
        return serve(*args, **kwargs)

    return serving


def main(argv=None):
    import moto.server
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    import moto_dynamodb

    moto_dynamodb.install()

    class SerializedDynamoDB(DomainDispatcherApplication):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self._serialized = counting_requests(injecting_faults(one_dynamodb_request_at_a_time(super().__call__)))

        def __call__(self, environ, start_response):
            return self._serialized(environ, start_response)

    # moto_server's own main (its options, its request handler), with this application.
    moto.server.DomainDispatcherApplication = SerializedDynamoDB
    moto.server.run_simple = stopping_at_once(moto.server.run_simple)
    moto.server.main(argv if argv is not None else sys.argv[1:])


if __name__ == "__main__":
    main()
