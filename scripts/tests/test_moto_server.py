"""The faults scripts/moto_server.py injects for `make faults` (POST /_wxbridge/inject): a
delay and a share of failures, on one service's requests, for a while.

  .venv/bin/python -m unittest discover -s scripts/tests -p 'test_moto_server.py'
"""

import io
import json
import os
import sys
import threading
import unittest
import urllib.error
import urllib.request

from botocore.exceptions import ClientError
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import moto_server  # noqa: E402
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_emulator import Client  # noqa: E402


class Clock:
    """A clock that moves only when told, and a sleep that records instead of sleeping."""

    def __init__(self):
        self.now = 100.0
        self.slept = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.slept.append(seconds)


class Draws:
    """`random.random` replaced by a list of draws, repeated."""

    def __init__(self, draws):
        self.draws, self.i = draws, 0

    def __call__(self):
        draw = self.draws[self.i % len(self.draws)]
        self.i += 1
        return draw


def call(app, path="/", method="POST", target=None, body=None):
    """`app`'s answer to one request: (status, JSON body or text)."""
    data = json.dumps(body).encode() if body is not None else b""
    environ = {
        "PATH_INFO": path,
        "REQUEST_METHOD": method,
        "CONTENT_LENGTH": str(len(data)),
        "wsgi.input": io.BytesIO(data),
    }
    if target:
        environ["HTTP_X_AMZ_TARGET"] = target
    answered = {}

    def start_response(status, headers):
        answered["status"] = status

    chunks = b"".join(app(environ, start_response))
    try:
        return answered["status"], json.loads(chunks)
    except ValueError:
        return answered["status"], chunks.decode()


def served(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"served"]


GET_ITEM = "DynamoDB_20120810.GetItem"
SEND_MESSAGE = "AmazonSQS.SendMessage"


class InjectionTest(unittest.TestCase):
    def setUp(self):
        self.clock = Clock()

    def app(self, draws):
        return moto_server.injecting_faults(served, clock=self.clock, sleep=self.clock.sleep, draw=Draws(draws))

    def test_a_delay_drawn_from_the_range_then_served(self):
        app = self.app([0.5, 0.9])  # the delay's draw, then the failure's
        status, _ = call(app, moto_server.INJECT_PATH, body={"service": "dynamodb", "delay_ms": [1000, 3000], "fail_share": 0.2, "seconds": 20})
        self.assertEqual(status, "200 OK")
        self.assertEqual(call(app, target=GET_ITEM), ("200 OK", "served"))
        self.assertEqual(self.clock.slept, [2.0])

    def test_a_share_answered_as_dynamodb_answers_when_overloaded(self):
        # Each request: the delay's draw, the failure's, then which failure.
        app = self.app([0.0, 0.1, 0.2, 0.0, 0.1, 0.7, 0.0, 0.5])
        call(app, moto_server.INJECT_PATH, body={"service": "dynamodb", "delay_ms": 5, "fail_share": 0.3, "seconds": 20})
        status, body = call(app, target=GET_ITEM)
        self.assertEqual(status, "400 Bad Request")
        self.assertEqual(body["__type"], "com.amazonaws.dynamodb.v20120810#ThrottlingException")
        self.assertEqual(body["message"], "Rate of requests exceeds the allowed throughput.")
        status, body = call(app, target=GET_ITEM)
        self.assertEqual(status, "500 Internal Server Error")
        self.assertEqual(body["__type"], "com.amazonaws.dynamodb.v20120810#InternalServerError")
        # Draws: delay 0.0, failure 0.5 (not under 0.3): served.
        self.assertEqual(call(app, target=GET_ITEM), ("200 OK", "served"))
        _, state = call(app, moto_server.INJECT_PATH, method="GET")
        self.assertEqual((state["dynamodb"]["delayed"], state["dynamodb"]["failed"]), (3, 2))

    def test_only_the_named_service_and_only_for_a_while(self):
        app = self.app([0.0])
        call(app, moto_server.INJECT_PATH, body={"service": "dynamodb", "fail_share": 1, "fail_with": "throttling", "seconds": 20})
        self.assertEqual(call(app, target=SEND_MESSAGE), ("200 OK", "served"))
        self.assertEqual(call(app, path="/moto-api/", method="GET"), ("200 OK", "served"))
        self.assertEqual(call(app, target=GET_ITEM)[0], "400 Bad Request")
        self.clock.now += 20
        self.assertEqual(call(app, target=GET_ITEM), ("200 OK", "served"))
        _, state = call(app, moto_server.INJECT_PATH, method="GET")
        self.assertEqual(state["dynamodb"]["seconds_left"], 0)

    def test_seconds_zero_ends_an_injection_and_sqs_fails_as_sqs(self):
        app = self.app([0.0])
        call(app, moto_server.INJECT_PATH, body={"service": "sqs", "fail_share": 1, "seconds": 60})
        status, body = call(app, target=SEND_MESSAGE)
        self.assertEqual((status, body["__type"]), ("500 Internal Server Error", "com.amazonaws.sqs#InternalError"))
        call(app, moto_server.INJECT_PATH, body={"service": "sqs", "seconds": 0})
        self.assertEqual(call(app, target=SEND_MESSAGE), ("200 OK", "served"))

    def test_a_request_that_does_not_say_what_to_inject_is_refused(self):
        app = self.app([0.0])
        for spec in [
            None,
            [],
            {"service": "s3", "seconds": 1},
            {"service": "dynamodb"},
            {"service": "dynamodb", "seconds": -1},
            {"service": "dynamodb", "seconds": True},
            {"service": "dynamodb", "seconds": 1, "delay_ms": [3, 1]},
            {"service": "dynamodb", "seconds": 1, "delay_ms": "slow"},
            {"service": "dynamodb", "seconds": 1, "delay_ms": [1, 2, 3]},
            {"service": "dynamodb", "seconds": 1, "fail_share": 1.5},
            {"service": "dynamodb", "seconds": 1, "fail_with": "teapot"},
        ]:
            with self.subTest(spec=spec):
                status, body = call(app, moto_server.INJECT_PATH, body=spec)
                self.assertEqual(status, "400 Bad Request")
                self.assertIn("error", body)
        status, _ = call(app, moto_server.INJECT_PATH, body=None)
        self.assertEqual(status, "400 Bad Request")
        environ_body = b"{not json"
        environ = {
            "PATH_INFO": moto_server.INJECT_PATH,
            "REQUEST_METHOD": "POST",
            "CONTENT_LENGTH": str(len(environ_body)),
            "wsgi.input": io.BytesIO(environ_body),
        }
        statuses = []
        app(environ, lambda status, headers: statuses.append(status))
        self.assertEqual(statuses, ["400 Bad Request"])
        self.assertEqual(call(app, target=GET_ITEM), ("200 OK", "served"), "nothing injected")


class Delays:
    """The injected delays' sleep: records each delay and, while `wait_for` is set, holds
    each sleeper until that many sleep at once (10 s at most)."""

    def __init__(self):
        self.lock = threading.Condition()
        self.slept, self.sleeping, self.most_at_once, self.wait_for = [], 0, 0, None

    def sleep(self, seconds):
        with self.lock:
            self.slept.append(seconds)
            self.sleeping += 1
            self.most_at_once = max(self.most_at_once, self.sleeping)
            self.lock.notify_all()
            if self.wait_for:
                self.lock.wait_for(lambda: self.most_at_once >= self.wait_for, timeout=10)
            self.sleeping -= 1


class QuietHandler(MotoRequestHandler):
    def log_request(self, *args, **kwargs):
        pass


class OnMotoTest(Client, unittest.TestCase):
    """moto as scripts/moto_server.py serves it, on a free loopback port in this process:
    the SDK (boto3) reads the injected failures as DynamoDB's own, and delayed requests
    wait side by side, not behind the lock that serves DynamoDB one request at a time."""

    @classmethod
    def setUpClass(cls):
        app = DomainDispatcherApplication(create_backend_app)
        cls.delays = Delays()
        wrapped = moto_server.counting_requests(
            moto_server.injecting_faults(moto_server.one_dynamodb_request_at_a_time(app), sleep=cls.delays.sleep)
        )
        cls.server = make_server("127.0.0.1", 0, wrapped, threaded=True, request_handler=QuietHandler)
        cls.url = f"http://127.0.0.1:{cls.server.server_port}"
        cls.thread = threading.Thread(target=cls.server.serve_forever, daemon=True)
        cls.thread.start()

    @classmethod
    def tearDownClass(cls):
        cls.server.shutdown()
        cls.thread.join()

    def inject(self, spec):
        request = urllib.request.Request(
            f"{self.url}{moto_server.INJECT_PATH}", data=json.dumps(spec).encode(), headers={"content-type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=5) as answer:
            return json.load(answer)

    def tearDown(self):
        self.inject({"service": "dynamodb", "seconds": 0})

    def test_the_sdk_reads_a_throttling_exception_and_an_internal_server_error(self):
        dynamodb = self.client("dynamodb")
        for fail_with, code, status in [("throttling", "ThrottlingException", 400), ("internal", "InternalServerError", 500)]:
            self.inject({"service": "dynamodb", "fail_share": 1, "fail_with": fail_with, "seconds": 30})
            with self.assertRaises(ClientError) as raised:
                dynamodb.list_tables()
            error = raised.exception.response
            self.assertEqual((error["Error"]["Code"], error["ResponseMetadata"]["HTTPStatusCode"]), (code, status))
        self.client("sqs").list_queues()  # SQS is served

    def test_delayed_requests_wait_side_by_side(self):
        """Four requests delayed at once are all in their delay together: none waits for
        another's (the delay is taken outside the lock that serves DynamoDB one request at
        a time). Seen by the delays themselves, not by a clock: each waits until four are
        delayed at once (or 10 s, the sign that they are not)."""
        self.inject({"service": "dynamodb", "delay_ms": 400, "seconds": 60})
        self.delays.slept.clear()
        self.delays.most_at_once, self.delays.wait_for = 0, 4
        errors = []

        def one():
            try:
                self.client("dynamodb").list_tables()
            except Exception as error:  # noqa: BLE001 reported below
                errors.append(error)

        threads = [threading.Thread(target=one) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self.assertEqual(errors, [])
        self.assertEqual(self.delays.most_at_once, 4)
        self.assertEqual(self.delays.slept, [0.4] * 4)
        with urllib.request.urlopen(f"{self.url}{moto_server.INJECT_PATH}", timeout=5) as answer:
            self.assertEqual(json.load(answer)["dynamodb"]["delayed"], 4)

    def test_a_bad_injection_is_answered_400(self):
        request = urllib.request.Request(f"{self.url}{moto_server.INJECT_PATH}", data=b"[]", headers={"content-type": "application/json"})
        with self.assertRaises(urllib.error.HTTPError) as raised:
            urllib.request.urlopen(request, timeout=5)
        self.assertEqual(raised.exception.code, 400)


if __name__ == "__main__":
    unittest.main()
