"""Where the local AWS emulator (moto server, `moto[server]` pinned in
requirements-test.txt) differs from SQS and DynamoDB, and what the local stack does about
it (docs/local-stack.md, "The emulator's limits").

Each test says what AWS guarantees. A test named `test_moto_…` asserts what moto does
instead, so it fails the day an upgrade of moto fixes it: then the workaround it names
can go. The tests start their own moto servers on free loopback ports (plain moto, and moto
as scripts/moto_server.py serves it); they need no running emulator.

  .venv/bin/python -m unittest discover -s scripts/tests -p 'test_emulator.py'
"""

import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
import unittest
import urllib.request
import uuid

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server

SCRIPTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


class Client:
    """A moto server at `self.url`."""

    def client(self, service):
        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            # Every answer as the emulator gives it: no retry hides a 500.
            config=Config(retries={"mode": "standard", "max_attempts": 1}, max_pool_connections=20),
        )


class InProcess(Client):
    """Plain moto server on a free loopback port, in this process (so that the CPU it
    takes is this process's)."""

    def __init__(self):
        self.server = make_server(
            "127.0.0.1",
            0,
            DomainDispatcherApplication(create_backend_app),
            threaded=True,
            request_handler=MotoRequestHandler,
        )
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.thread.join()


class Process(Client):
    """A moto server on a free loopback port, in a process of its own as the local stack
    runs it: `module`'s `main` (moto.server's: plain moto; moto_server's: as
    scripts/moto_server.py serves it) with `-H 127.0.0.1 -p PORT`. Python switches threads
    every 10 µs in it instead of 5 ms, so that requests arriving together interleave within
    a few hundred requests as they do under load."""

    PROGRAM = (
        "import sys; sys.setswitchinterval(1e-5); sys.path.insert(0, {scripts!r}); "
        "from {module} import main; main(sys.argv[1:])"
    )

    def __init__(self, module):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        program = self.PROGRAM.format(scripts=SCRIPTS, module=module)
        self.process = subprocess.Popen(
            [sys.executable, "-c", program, "-H", "127.0.0.1", "-p", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{self.url}/moto-api/", timeout=1)
                return
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"{module} did not start")
                time.sleep(0.1)

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:  # a thread still serving a kept-alive connection
            self.process.kill()
            self.process.wait()


class FifoQueueTest(unittest.TestCase):
    """SQS FIFO queues. The local stack's event source mapping (tools/devstack, event_source.rs)
    works around each of these; its tests show it (tools/devstack/tests/event_source.rs,
    fifo_order_under_load.rs)."""

    @classmethod
    def setUpClass(cls):
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's request log
        cls.plain = InProcess()

    @classmethod
    def tearDownClass(cls):
        cls.plain.stop()

    def queue(self, visibility_timeout=30):
        sqs = self.plain.client("sqs")
        url = sqs.create_queue(
            QueueName=f"emulator-{uuid.uuid4().hex[:12]}.fifo",
            Attributes={"FifoQueue": "true", "VisibilityTimeout": str(visibility_timeout)},
        )["QueueUrl"]
        return sqs, url

    @staticmethod
    def send(sqs, url, bodies, group="user-1"):
        return [
            sqs.send_message(QueueUrl=url, MessageBody=body, MessageGroupId=group, MessageDeduplicationId=body)
            for body in bodies
        ]

    @staticmethod
    def receive(sqs, url, wait=0, count=10):
        messages = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=count, WaitTimeSeconds=wait, MessageSystemAttributeNames=["All"]
        ).get("Messages", [])
        return messages

    def test_moto_hands_out_the_last_of_a_group_first(self):
        """SQS hands out a message group in order: once every message of a group received
        together is visible again (a backoff set on each, or the visibility timeout), the
        next receive returns the first of them (and the rest after it, in order).

        moto returns the group's last message alone, and then nothing of the group until
        that one is gone. Root cause: moto/sqs/models.py, `SQSBackend.receive_message`:
        a message whose visibility has expired is dropped from the queue's pending set
        only when the receive walks past it, and each message's group is checked against
        the pending set as it stands at that point — the group's earlier messages are
        skipped while its later ones are still pending, and the last one, the first to
        find the group free, is handed out.

        Workaround: the event source mapping returns records handed out ahead of their
        group's earlier ones at once and receives again (`EventSourceMapping::receive`)."""
        sqs, url = self.queue()
        self.send(sqs, url, ["m0", "m1", "m2", "m3"])
        batch = self.receive(sqs, url)
        self.assertEqual([m["Body"] for m in batch], ["m0", "m1", "m2", "m3"])
        for message in batch:
            # A backoff on each record of the group, as the FIFO consumer sets it.
            sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=1)
        time.sleep(1.3)
        # SQS: ["m0", "m1", "m2", "m3"].
        self.assertEqual([m["Body"] for m in self.receive(sqs, url)], ["m3"])
        self.assertEqual(self.receive(sqs, url), [], "the rest of the group is held behind m3")

    def test_a_group_made_visible_at_once_comes_back_in_order(self):
        """What the event source mapping relies on when it returns records: a group whose
        records are made visible at once (ChangeMessageVisibility 0) is handed out in
        order, on moto as on SQS."""
        sqs, url = self.queue()
        self.send(sqs, url, ["m0", "m1", "m2"])
        for message in self.receive(sqs, url):
            sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0)
        self.assertEqual([m["Body"] for m in self.receive(sqs, url)], ["m0", "m1", "m2"])

    def test_moto_numbers_fifo_messages_at_random(self):
        """SQS gives each message of a FIFO queue a SequenceNumber that increases within its
        group, so a group's order can be read from it.

        moto draws each one at random (moto/sqs/models.py, `SQSBackend.send_message`: 20
        random digits). The event source mapping therefore takes a group's order from the
        batches, which moto lists in the order the records were sent (as below)."""
        sqs, url = self.queue()
        sent = self.send(sqs, url, [f"m{i}" for i in range(12)])
        numbers = [int(answer["SequenceNumber"]) for answer in sent]
        # SQS: numbers == sorted(numbers). At random, 12 in order has odds of 1 in 479001600.
        self.assertNotEqual(numbers, sorted(numbers))
        received = self.receive(sqs, url)
        self.assertEqual([m["Body"] for m in received], [f"m{i}" for i in range(10)], "but delivered in order")

    def test_moto_spins_through_a_long_poll_while_a_group_is_blocked(self):
        """A long poll (WaitTimeSeconds) that finds nothing it may hand out waits, idle,
        for a message to become receivable.

        moto waits idle on an empty queue, but when every visible message belongs to a
        group held by a message in flight it spins for the whole wait, taking the CPU from
        every other request to the emulator. Root cause: moto/sqs/models.py,
        `SQSBackend.receive_message` waits with `Queue.wait_for_messages`, which returns at
        once while any message is visible, receivable or not, so the loop starts over
        without pause.

        Workaround: the event source mapping never long-polls: it receives without a wait
        and pauses between empty receives itself (`EventSourceMapping::receive`)."""
        sqs, url = self.queue()
        self.send(sqs, url, ["m0", "m1"])
        self.assertEqual([m["Body"] for m in self.receive(sqs, url, count=1)], ["m0"])  # m1 waits behind m0

        # Counted, not timed: how many times the long poll's loop went round (each round
        # waits with Queue.wait_for_messages), which a busy machine does not change.
        from moto.sqs.models import Queue

        rounds = []
        moto_wait = Queue.wait_for_messages

        def counted(queue, timeout):
            rounds.append(queue.name)
            return moto_wait(queue, timeout)

        def long_poll(queue_url):
            rounds.clear()
            self.assertEqual(self.receive(sqs, queue_url, wait=1), [])
            return len(rounds)

        _, empty_url = self.queue()
        Queue.wait_for_messages = counted
        try:
            idle, busy = long_poll(empty_url), long_poll(url)
        finally:
            Queue.wait_for_messages = moto_wait
        self.assertLessEqual(idle, 2, f"an empty queue: moto waits idle, a second at a time ({idle} rounds)")
        # SQS: as idle as on an empty queue.
        self.assertGreater(busy, 50, f"a blocked group: moto goes round without waiting ({busy} rounds)")


class DynamoDbTest(unittest.TestCase):
    """DynamoDB under concurrent requests, as the functions make them: on plain moto (in
    this process, where a test can make a write land at a chosen point of a request, as
    another request's thread would), and on moto as scripts/moto_server.py serves it (in a
    process of its own, raced by real threads)."""

    @classmethod
    def setUpClass(cls):
        # moto's request log, and the traceback of the 500 provoked below.
        logging.getLogger("werkzeug").setLevel(logging.CRITICAL)
        cls.plain = InProcess()
        cls.serialized = Process("moto_server")

    @classmethod
    def tearDownClass(cls):
        cls.plain.stop()
        cls.serialized.stop()

    @staticmethod
    def table(emulator, items):
        """A new table holding `items` items."""
        dynamodb = emulator.client("dynamodb")
        name = f"emulator-{uuid.uuid4().hex[:12]}"
        dynamodb.create_table(
            TableName=name,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        for start in range(0, items, 25):
            dynamodb.batch_write_item(
                RequestItems={name: [put_request(f"old-{i}") for i in range(start, min(items, start + 25))]}
            )
        return name

    @staticmethod
    def race(emulator, name, writers):
        """Runs each writer on a thread of its own, all at once, into table `name`: the keys
        acknowledged, and the HTTP status of each failure other than a cancelled
        transaction. A writer is a function of a `Writes` (its client, the table, its
        number) that goes on after a failure."""
        acknowledged, failures = [], []
        threads = [
            threading.Thread(target=writer, args=(Writes(emulator.client("dynamodb"), name, n, acknowledged, failures),))
            for n, writer in enumerate(writers)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return acknowledged, failures

    @staticmethod
    def stored(emulator, name):
        keys = set()
        for page in emulator.client("dynamodb").get_paginator("scan").paginate(TableName=name):
            keys.update(item["pk"]["S"] for item in page["Items"])
        return keys

    def transactions_racing_transactions(self, emulator):
        """Eight writers, each writing 10 transactions of two new items into a table of 200
        items: the HTTP status of each failure."""
        name = self.table(emulator, 200)
        _, failures = self.race(emulator, name, [transactions] * 8)
        return failures

    def puts_racing_cancelled_transactions(self, emulator):
        """Four writers putting 40 new items each while four write 40 transactions each that
        are cancelled by their condition, into one small table: the acknowledged items
        missing afterwards, and the HTTP status of each failure."""
        name = self.table(emulator, 1)
        acknowledged, failures = self.race(emulator, name, [puts] * 4 + [cancelled_transactions] * 4)
        stored = self.stored(emulator, name)
        return [key for key in acknowledged if key not in stored], failures

    def test_moto_answers_500_to_a_transaction_racing_other_writes(self):
        """DynamoDB applies each request atomically: writes to one table at once do not fail
        for one another.

        moto answers some TransactWriteItems 500. Root cause:
        moto/dynamodb/models/__init__.py, `DynamoDBBackend.transact_write_items` deep-copies
        each table it writes to, without a lock (moto server serves each request on a thread
        of its own), to roll back on failure; a write landing in the table during the copy
        raises `RuntimeError: dictionary changed size during iteration`, answered as a bare
        500. The SDK retries a 500 (at most 3 attempts within the functions' 3 s budget);
        the functions answered 503 ("store unavailable") when every attempt met the race.

        Here the write lands during the copy every time: one of the table's items holds a
        value whose copy makes it.

        Workaround: scripts/moto_server.py, which the local stack and the tests run, serves
        DynamoDB's requests one at a time (test_the_local_emulator_keeps_concurrent_writes)."""
        name = self.table(self.plain, 3)
        backend = plain_backend()

        class WritesWhenCopied:
            """A new item each time (the SDK may try again)."""

            writes = 0

            def __deepcopy__(self, memo):
                WritesWhenCopied.writes += 1
                backend.put_item(name, item(f"written-meanwhile-{self.writes}"))
                return self

        stored = backend.get_table(name).all_items()[0]
        stored.attrs["meanwhile"] = WritesWhenCopied()
        with self.assertRaises(ClientError) as raised:
            self.plain.client("dynamodb").transact_write_items(
                TransactItems=[{"Put": {"TableName": name, "Item": item("new")}}]
            )
        # DynamoDB: the transaction applied, beside the other write.
        self.assertEqual(raised.exception.response["ResponseMetadata"]["HTTPStatusCode"], 500)

    def test_moto_loses_writes_to_a_cancelled_transactions_rollback(self):
        """DynamoDB applies each request atomically: a transaction cancelled by its
        condition writes nothing and undoes nothing it did not write.

        moto loses acknowledged writes. Root cause: moto/dynamodb/models/__init__.py,
        `DynamoDBBackend.transact_write_items` rolls a cancelled transaction back by putting
        back its copy of the whole table, taken when the transaction started, which erases
        every write other requests made to the table in the meantime.

        Here the other write lands between the copy and the rollback every time: when the
        transaction reads the item its condition is about.

        Workaround: scripts/moto_server.py (as above)."""
        name = self.table(self.plain, 1)
        backend = plain_backend()
        moto_get_item = backend.get_item

        def get_item_while_another_request_writes(*args, **kwargs):
            backend.put_item(name, item("written-meanwhile"))  # acknowledged to its writer
            return moto_get_item(*args, **kwargs)

        backend.get_item = get_item_while_another_request_writes
        try:
            with self.assertRaises(ClientError) as raised:
                self.plain.client("dynamodb").transact_write_items(
                    TransactItems=[
                        {"Put": {"TableName": name, "Item": item("never")}},
                        {"Put": {"TableName": name, "Item": item("old-0"), "ConditionExpression": "attribute_not_exists(pk)"}},
                    ]
                )
        finally:
            del backend.get_item
        self.assertEqual(raised.exception.response["Error"]["Code"], "TransactionCanceledException")
        # DynamoDB: {"old-0", "written-meanwhile"}.
        self.assertEqual(self.stored(self.plain, name), {"old-0"})

    def test_the_local_emulator_keeps_concurrent_writes(self):
        """The same races on moto as scripts/moto_server.py serves it: no request fails,
        no write is lost."""
        self.assertEqual(self.transactions_racing_transactions(self.serialized), [])
        self.assertEqual(self.puts_racing_cancelled_transactions(self.serialized), ([], []))

    def test_the_local_emulator_counts_the_requests_it_serves(self):
        """GET /_wxbridge/requests: each operation's count, moving by what was asked."""

        def counts():
            with urllib.request.urlopen(f"{self.serialized.url}/_wxbridge/requests", timeout=5) as answer:
                return json.load(answer)

        before = counts()
        sqs = self.serialized.client("sqs")
        url = sqs.create_queue(QueueName=f"counted-{uuid.uuid4().hex[:12]}")["QueueUrl"]
        for _ in range(3):
            sqs.send_message(QueueUrl=url, MessageBody="x")
        self.serialized.client("dynamodb").list_tables()
        after = counts()
        moved = {op: after[op] - before.get(op, 0) for op in after if after[op] != before.get(op, 0)}
        self.assertEqual(
            moved,
            {"AmazonSQS.CreateQueue": 1, "AmazonSQS.SendMessage": 3, "DynamoDB_20120810.ListTables": 1},
        )


def plain_backend():
    """moto's DynamoDB in this process (InProcess's)."""
    from moto.dynamodb.models import dynamodb_backends

    return dynamodb_backends["123456789012"]["us-east-1"]


def put_request(key):
    return {"PutRequest": {"Item": item(key)}}


def item(key):
    return {"pk": {"S": key}, "sk": {"S": "item"}}


class Writes:
    """One writer's client, table and number, and where it reports what it wrote."""

    def __init__(self, client, table, number, acknowledged, failures):
        self.client, self.table, self.number = client, table, number
        self.acknowledged, self.failures = acknowledged, failures

    def write(self, call, keys, **request):
        """Makes `call` (a method of the client) with `request`; `keys` were written if it
        answers. A cancelled transaction wrote nothing; any other failure is recorded."""
        try:
            call(**request)
        except ClientError as error:
            if error.response["Error"]["Code"] != "TransactionCanceledException":
                self.failures.append(error.response["ResponseMetadata"]["HTTPStatusCode"])
            return
        self.acknowledged.extend(keys)


def transactions(writes):
    """10 transactions, each writing two new items."""
    for i in range(10):
        keys = [f"tx-{writes.number}-{i}", f"tx-{writes.number}-{i}-2"]
        writes.write(
            writes.client.transact_write_items,
            keys,
            TransactItems=[{"Put": {"TableName": writes.table, "Item": item(key)}} for key in keys],
        )


def puts(writes):
    """40 new items, one PutItem each."""
    for i in range(40):
        key = f"put-{writes.number}-{i}"
        writes.write(writes.client.put_item, [key], TableName=writes.table, Item=item(key))


def cancelled_transactions(writes):
    """40 transactions cancelled by their condition (old-0 exists): they write nothing."""
    for i in range(40):
        writes.write(
            writes.client.transact_write_items,
            [],
            TransactItems=[
                {"Put": {"TableName": writes.table, "Item": item(f"never-{writes.number}-{i}")}},
                {
                    "Put": {
                        "TableName": writes.table,
                        "Item": item("old-0"),
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
            ],
        )


if __name__ == "__main__":
    unittest.main()
