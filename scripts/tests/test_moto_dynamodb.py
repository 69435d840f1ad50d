"""moto's DynamoDB as scripts/moto_dynamodb.py patches it: a request costs what it costs on
a small table, a cancelled transaction still writes nothing, and the emulator
(scripts/moto_server.py) stops at once.

A request's cost is counted, not timed: the Python lines the emulator runs to serve it
(a trace on the serving thread, for that request alone), the same on a busy machine as
on an idle one.

  .venv/bin/python -m unittest discover -s scripts/tests -p 'test_moto_dynamodb.py'
"""

import logging
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import unittest
import urllib.request
import uuid

from botocore.exceptions import ClientError
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server

TESTS = os.path.dirname(os.path.abspath(__file__))
SCRIPTS = os.path.join(TESTS, "..")
sys.path.insert(0, SCRIPTS)
sys.path.insert(0, TESTS)
import moto_dynamodb  # noqa: E402
import moto_server  # noqa: E402
from test_emulator import Client, Process  # noqa: E402

ACCOUNT, REGION = "123456789012", "us-east-1"


class Quiet(MotoRequestHandler):
    def log_request(self, *args, **kwargs):
        pass


class Traced(Client):
    """moto server (DynamoDB one request at a time, as scripts/moto_server.py serves it) on
    a free loopback port in this process, counting the Python lines it runs for each
    request while `counting` is set."""

    def __init__(self):
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        app = moto_server.one_dynamodb_request_at_a_time(DomainDispatcherApplication(create_backend_app))
        self.lines, self.counting = 0, False

        def count(frame, event, arg):
            if event == "line":
                self.lines += 1
            return count

        def traced(environ, start_response):
            if not self.counting:
                return app(environ, start_response)
            sys.settrace(count)  # this thread, this request
            try:
                return list(app(environ, start_response))
            finally:
                sys.settrace(None)

        self.server = make_server("127.0.0.1", 0, traced, threaded=True, request_handler=Quiet)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def cost(self, request):
        """The lines run to serve `request` (a function of nothing)."""
        self.lines, self.counting = 0, True
        try:
            request()
        finally:
            self.counting = False
        return self.lines

    def stop(self):
        self.server.shutdown()
        self.thread.join()


def create_table(dynamodb, items):
    """A table like the bridge's (a key, an index) holding `items` items, 10 a partition
    and 10 an index partition: its name."""
    from moto.dynamodb.models import dynamodb_backends

    name = f"cost-{uuid.uuid4().hex[:12]}"
    dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": a, "AttributeType": "S"} for a in ["pk", "sk", "gsi1pk"]],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "gsi1",
                "KeySchema": [{"AttributeName": "gsi1pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    backend = dynamodb_backends[ACCOUNT][REGION]  # filled directly: fast, and no request to count
    for n in range(items):
        backend.put_item(name, item(f"p{n // 10}", f"s{n % 10}", gsi=f"g{n // 10}", text="a few words " * 4))
    return name


def item(pk, sk, gsi=None, **attributes):
    fields = {"pk": {"S": pk}, "sk": {"S": sk}, **{k: {"S": v} for k, v in attributes.items()}}
    if gsi is not None:
        fields["gsi1pk"] = {"S": gsi}
    return fields


def requests(dynamodb, table):
    """The requests whose cost is compared, by name: each a function of a fresh number."""

    def transaction(n, cancelled=False):
        return dynamodb.transact_write_items(
            TransactItems=[
                {
                    "Put": {
                        "TableName": table,
                        "Item": item("p1", "s4") if cancelled else item(f"new{n}", "dedupe"),
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
                {"Put": {"TableName": table, "Item": item(f"new{n}", "message", gsi=f"new{n}")}},
                {
                    "Update": {
                        "TableName": table,
                        "Key": {"pk": {"S": "p1"}, "sk": {"S": "s1"}},
                        "UpdateExpression": "SET #t = :t",
                        "ExpressionAttributeNames": {"#t": "text"},
                        "ExpressionAttributeValues": {":t": {"S": f"changed {n}"}},
                    }
                },
            ]
        )

    def cancelled(n):
        try:
            transaction(n, cancelled=True)
        except dynamodb.exceptions.TransactionCanceledException:
            return
        raise AssertionError("not cancelled")

    return {
        "TransactWriteItems": transaction,
        "TransactWriteItems cancelled": cancelled,
        "Query": lambda n: dynamodb.query(
            TableName=table, KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "p1"}}
        ),
        "Query on an index": lambda n: dynamodb.query(
            TableName=table,
            IndexName="gsi1",
            KeyConditionExpression="gsi1pk = :g",
            ExpressionAttributeValues={":g": {"S": "g1"}},
        ),
        "PutItem": lambda n: dynamodb.put_item(TableName=table, Item=item(f"put{n}", "s0", gsi="g1")),
    }


class CostTest(unittest.TestCase):
    """What a request costs on a table of SMALL items and on one of LARGE."""

    SMALL, LARGE = 20, 2000

    @classmethod
    def setUpClass(cls):
        cls.emulator = Traced()

    @classmethod
    def tearDownClass(cls):
        cls.emulator.stop()

    def costs(self):
        """Each request's cost on the small table and on the large one."""
        dynamodb = self.emulator.client("dynamodb")
        costs = {}
        for size in (self.SMALL, self.LARGE):
            table = create_table(dynamodb, size)
            for name, request in requests(dynamodb, table).items():
                request(0)  # moto's first request of a kind loads what it needs; an index's partitions are built
                costs.setdefault(name, []).append(self.emulator.cost(lambda: request(1)))
        return costs

    def test_moto_copies_the_table_in_each_transaction_and_walks_it_in_each_query(self):
        """DynamoDB: a request's cost does not depend on the size of the table.

        moto's does: `DynamoDBBackend.transact_write_items` deep-copies each table it writes
        to (to roll back), `Table.query` walks every item of the table. Root cause of the
        emulator's memory climbing to 17 GB in a load run, and of its requests slowing down
        as the table grew.

        Workaround: scripts/moto_dynamodb.py (test_a_request_costs_the_same_on_a_large_table)."""
        costs = self.costs()
        for name in ["TransactWriteItems", "TransactWriteItems cancelled", "Query", "Query on an index"]:
            small, large = costs[name]
            with self.subTest(name):
                # DynamoDB: large ≈ small.
                self.assertGreater(large, 3 * small, f"{name}: {small} lines on {self.SMALL} items, {large} on {self.LARGE}")

    def test_a_request_costs_the_same_on_a_large_table(self):
        with moto_dynamodb.installed():
            costs = self.costs()
        for name, (small, large) in costs.items():
            with self.subTest(name):
                self.assertLess(large, 1.05 * small, f"{name}: {small} lines on {self.SMALL} items, {large} on {self.LARGE}")

    def test_a_transaction_copies_the_items_it_writes(self):
        dynamodb = self.emulator.client("dynamodb")
        with moto_dynamodb.installed():
            transaction = requests(dynamodb, create_table(dynamodb, self.LARGE))["TransactWriteItems"]
            before = moto_dynamodb.COUNTS["copied"]
            transaction(1)
            self.assertEqual(moto_dynamodb.COUNTS["copied"] - before, 3, "a put, a put and an update")


class RollbackTest(unittest.TestCase):
    """A transaction cancelled by a condition (or refused as invalid) writes nothing, on the
    patched moto as on moto's own, which rolls back by putting a copy of the table back."""

    @classmethod
    def setUpClass(cls):
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        cls.patched = Traced()
        cls.plain = Process("moto.server")  # moto's own, in a process of its own

    @classmethod
    def tearDownClass(cls):
        cls.patched.stop()
        cls.plain.stop()

    def setUp(self):
        self.installed = moto_dynamodb.installed()
        self.installed.__enter__()

    def tearDown(self):
        self.installed.__exit__(None, None, None)

    @staticmethod
    def table(emulator):
        dynamodb = emulator.client("dynamodb")
        name = f"rollback-{uuid.uuid4().hex[:12]}"
        dynamodb.create_table(
            TableName=name,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[{"AttributeName": a, "AttributeType": "S"} for a in ["pk", "sk", "gsi1pk"]],
            GlobalSecondaryIndexes=[
                {
                    "IndexName": "gsi1",
                    "KeySchema": [{"AttributeName": "gsi1pk", "KeyType": "HASH"}],
                    "Projection": {"ProjectionType": "ALL"},
                }
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        return dynamodb, name

    @staticmethod
    def contents(dynamodb, table, groups=("g0", "g1", "g2")):
        """Every item, and what a query of each index partition answers."""
        items = dynamodb.scan(TableName=table)["Items"]
        by_group = {
            g: dynamodb.query(
                TableName=table,
                IndexName="gsi1",
                KeyConditionExpression="gsi1pk = :g",
                ExpressionAttributeValues={":g": {"S": g}},
            )["Items"]
            for g in groups
        }
        key = lambda i: (i["pk"]["S"], i["sk"]["S"])  # noqa: E731
        return sorted(items, key=key), {g: sorted(found, key=key) for g, found in by_group.items()}

    def test_a_cancelled_transaction_puts_back_exactly_what_it_touched(self):
        dynamodb, table = self.table(self.patched)
        dynamodb.query(  # the index's partitions are kept from here on
            TableName=table, IndexName="gsi1", KeyConditionExpression="gsi1pk = :g", ExpressionAttributeValues={":g": {"S": "g0"}}
        )
        for key, group in [("a", "g0"), ("b", "g0"), ("c", "g1"), ("untouched", "g1")]:
            dynamodb.put_item(TableName=table, Item=item(key, "x", gsi=group, text=f"{key} as it was"))
        before = self.contents(dynamodb, table)
        with self.assertRaises(ClientError) as raised:
            dynamodb.transact_write_items(
                TransactItems=[
                    {"Put": {"TableName": table, "Item": item("a", "x", gsi="g2", text="replaced")}},
                    {
                        "Update": {
                            "TableName": table,
                            "Key": {"pk": {"S": "b"}, "sk": {"S": "x"}},
                            "UpdateExpression": "SET gsi1pk = :g, #t = :t",
                            "ExpressionAttributeNames": {"#t": "text"},
                            "ExpressionAttributeValues": {":g": {"S": "g1"}, ":t": {"S": "changed"}},
                        }
                    },
                    {"Delete": {"TableName": table, "Key": {"pk": {"S": "c"}, "sk": {"S": "x"}}}},
                    {"Put": {"TableName": table, "Item": item("new", "x", gsi="g0")}},
                    {
                        "ConditionCheck": {
                            "TableName": table,
                            "Key": {"pk": {"S": "untouched"}, "sk": {"S": "x"}},
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                ]
            )
        self.assertEqual(raised.exception.response["Error"]["Code"], "TransactionCanceledException")
        self.assertEqual(self.contents(dynamodb, table), before)

    def test_a_transaction_naming_an_item_twice_writes_nothing(self):
        dynamodb, table = self.table(self.patched)
        dynamodb.put_item(TableName=table, Item=item("a", "x", gsi="g0", text="as it was"))
        before = self.contents(dynamodb, table)
        with self.assertRaises(ClientError) as raised:
            dynamodb.transact_write_items(
                TransactItems=[
                    {"Put": {"TableName": table, "Item": item("a", "x", gsi="g1", text="replaced")}},
                    {"Delete": {"TableName": table, "Key": {"pk": {"S": "a"}, "sk": {"S": "x"}}}},
                ]
            )
        self.assertEqual(raised.exception.response["Error"]["Code"], "ValidationException")
        self.assertEqual(self.contents(dynamodb, table), before)

    def test_random_writes_leave_what_moto_leaves(self):
        """300 random writes (transactions of up to four actions, some cancelled by their
        condition or naming an item twice, and single puts, updates and deletes) on 12 keys,
        made on both: after each, the same answer and the same items, by key and by index
        partition."""
        draw = random.Random(22)
        patched, patched_table = self.table(self.patched)
        plain, plain_table = self.table(self.plain)
        keys = [f"k{i}" for i in range(12)]
        for step in range(300):
            request = random_write(draw, keys)
            outcomes = [answer(client, table, request) for client, table in [(patched, patched_table), (plain, plain_table)]]
            self.assertEqual(outcomes[0], outcomes[1], f"step {step}: {request}")
            self.assertEqual(
                self.contents(patched, patched_table), self.contents(plain, plain_table), f"step {step}: {request}"
            )


def random_write(draw, keys):
    """One write: (operation, its parameters without the table's name)."""

    def action():
        key = {"pk": {"S": draw.choice(keys)}, "sk": {"S": "x"}}
        condition = draw.choice([None, None, "attribute_exists(pk)", "attribute_not_exists(pk)", "#n < :n"])
        kind = draw.choice(["Put", "Update", "Delete", "ConditionCheck"])
        body = {}
        if kind == "Put":
            body["Item"] = {**key, "gsi1pk": {"S": draw.choice(["g0", "g1", "g2"])}, "n": {"N": str(draw.randrange(5))}}
        elif kind == "Update":
            body["Key"] = key
            body["UpdateExpression"] = "SET gsi1pk = :g, #n = :v" if draw.random() < 0.5 else "REMOVE gsi1pk"
            if "SET" in body["UpdateExpression"]:
                body["ExpressionAttributeValues"] = {":g": {"S": draw.choice(["g0", "g1", "g2"])}, ":v": {"N": str(draw.randrange(5))}}
        else:
            body["Key"] = key
        if kind == "ConditionCheck" and condition is None:
            condition = "attribute_exists(pk)"
        if condition:
            body["ConditionExpression"] = condition
        if condition == "#n < :n" or "#n" in body.get("UpdateExpression", ""):
            body["ExpressionAttributeNames"] = {"#n": "n"}
        if condition == "#n < :n":
            body.setdefault("ExpressionAttributeValues", {})[":n"] = {"N": "3"}
        return kind, body

    if draw.random() < 0.7:
        return "TransactWriteItems", [action() for _ in range(draw.randint(1, 4))]
    kind, body = action()
    while kind == "ConditionCheck":
        kind, body = action()
    return {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem"}[kind], body


def answer(dynamodb, table, request):
    """What the emulator answers to `request`: "ok" or the error's code."""
    operation, parameters = request
    try:
        if operation == "TransactWriteItems":
            dynamodb.transact_write_items(TransactItems=[{kind: {"TableName": table, **body}} for kind, body in parameters])
        else:
            call = {"PutItem": dynamodb.put_item, "UpdateItem": dynamodb.update_item, "DeleteItem": dynamodb.delete_item}
            call[operation](TableName=table, **parameters)
    except ClientError as error:
        return error.response["Error"]["Code"]
    return "ok"


class StopTest(unittest.TestCase):
    """The emulator as the local stack runs it (scripts/moto_server.py, in a process of its
    own) stops within 5 s of SIGTERM, whatever it is doing."""

    # What ended moto's own exit (sys.exit from its signal handler): Python's orderly exit,
    # which frees each object of the emulator's state (17 GB of them took over 40 s) and
    # runs the exit handlers. An exit handler that takes 30 s stands for it here.
    PROGRAM = (
        "import atexit, sys, time; atexit.register(time.sleep, 30); sys.path.insert(0, {scripts!r}); "
        "from moto_server import main; main(sys.argv[1:])"
    )

    def test_sigterm_stops_a_busy_emulator_at_once(self):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        emulator = Client()
        emulator.url = f"http://127.0.0.1:{port}"
        process = subprocess.Popen(
            [sys.executable, "-c", self.PROGRAM.format(scripts=SCRIPTS), "-H", "127.0.0.1", "-p", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_until_up(emulator.url, process)
            dynamodb = emulator.client("dynamodb")
            table = create_remote_table(dynamodb)
            sqs = emulator.client("sqs")
            queue = sqs.create_queue(QueueName=f"stop-{uuid.uuid4().hex[:8]}")["QueueUrl"]
            served, stop = [], threading.Event()

            def busy(n):
                client = emulator.client("dynamodb")
                while not stop.is_set():
                    try:
                        client.transact_write_items(
                            TransactItems=[{"Put": {"TableName": table, "Item": item(f"{n}-{uuid.uuid4().hex}", "x")}}]
                        )
                        served.append(n)
                    except Exception:  # the emulator is gone
                        return

            def polling():
                client = emulator.client("sqs")
                while not stop.is_set():
                    try:
                        client.receive_message(QueueUrl=queue, WaitTimeSeconds=1)
                    except Exception:
                        return

            workers = [threading.Thread(target=busy, args=(n,), daemon=True) for n in range(4)]
            workers += [threading.Thread(target=polling, daemon=True) for _ in range(2)]
            for worker in workers:
                worker.start()
            while len(served) < 20:  # busy serving, whatever the machine's speed
                if process.poll() is not None:
                    self.fail("the emulator ended by itself")
                time.sleep(0.05)
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.fail("still running 5 s after SIGTERM")
            finally:
                stop.set()
            self.assertEqual(process.returncode, -signal.SIGTERM)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()


def wait_until_up(url, process):
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(f"{url}/moto-api/", timeout=1)
            return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the emulator did not start")
            time.sleep(0.1)


def create_remote_table(dynamodb):
    name = f"stop-{uuid.uuid4().hex[:12]}"
    dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": a, "AttributeType": "S"} for a in ["pk", "sk"]],
        BillingMode="PAY_PER_REQUEST",
    )
    return name


if __name__ == "__main__":
    unittest.main()
