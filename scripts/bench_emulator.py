"""What a DynamoDB request costs on the local emulator as the table grows: plain moto and
moto as scripts/moto_server.py serves it (scripts/moto_dynamodb.py), each on a table of
SMALL and of LARGE items, in the same run.

Each variant runs in a process of its own (the patch is process-wide), serving on a free
loopback port; the table is filled through moto's backend directly (fast), the requests
are made through boto3 as the functions make them: a PutItem, the inbound message's
TransactWriteItems (a pointer put only if absent, the message, the conversation updated),
the same transaction cancelled by its condition, a GetItem, a Query of one partition and
a Query of the message index (gsi1). Prints the median time per request and, per
variant, the ratio of the large table's to the small one's.

  .venv/bin/python scripts/bench_emulator.py [SMALL [LARGE]]     (1000 100000)
"""

import json
import logging
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid

SCRIPTS = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, SCRIPTS)

TABLE = "bench"
ACCOUNT, REGION = "123456789012", "us-east-1"
OPERATIONS = ["PutItem", "TransactWriteItems", "TransactWriteItems cancelled", "GetItem", "Query", "Query gsi1"]


def serve(patched):
    """An emulator on a free loopback port in this process: its URL."""
    import moto_server
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import make_server

    class Quiet(MotoRequestHandler):
        def log_request(self, *args, **kwargs):
            pass

    app = DomainDispatcherApplication(create_backend_app)
    if patched:
        import moto_dynamodb

        moto_dynamodb.install()
        app = moto_server.one_dynamodb_request_at_a_time(app)
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_port}"


def client(url):
    import boto3
    from botocore.config import Config

    return boto3.client(
        "dynamodb",
        endpoint_url=url,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"max_attempts": 1}),
    )


def create_table(dynamodb):
    attributes = ["pk", "sk", "gsi1pk", "gsi1sk"]
    dynamodb.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": a, "AttributeType": "S"} for a in attributes],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "gsi1",
                "KeySchema": [
                    {"AttributeName": "gsi1pk", "KeyType": "HASH"},
                    {"AttributeName": "gsi1sk", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
        BillingMode="PAY_PER_REQUEST",
    )


def message(pk, sk, n):
    """An item shaped like a stored message: keys, index keys, a few fields."""
    return {
        "pk": {"S": pk},
        "sk": {"S": sk},
        "gsi1pk": {"S": f"conv#{n // 10}"},  # 10 items a partition, as on the table
        "gsi1sk": {"S": f"{n:09d}"},
        "text": {"S": "a message of a few words " * 3},
        "status": {"S": "delivered"},
        "at": {"N": str(1_700_000_000 + n)},
    }


def fill(size):
    """`size` items in the table, 10 a partition, through moto's backend."""
    from moto.dynamodb.models import dynamodb_backends

    backend = dynamodb_backends[ACCOUNT][REGION]
    table = backend.get_table(TABLE)
    for n in range(len(table), size):
        backend.put_item(TABLE, message(f"user#{n // 10}", f"msg#{n % 10:03d}", n))


def requests(dynamodb):
    """Each operation as a function of a fresh number."""

    def transaction(n, cancelled):
        return dynamodb.transact_write_items(
            TransactItems=[
                {
                    "Put": {
                        "TableName": TABLE,
                        # The cancelled one names a pointer that exists.
                        "Item": {"pk": {"S": "user#0" if cancelled else f"new#{n}"}, "sk": {"S": "msg#000" if cancelled else "dedupe"}},
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
                {"Put": {"TableName": TABLE, "Item": message(f"new#{n}", "msg#000", n)}},
                {
                    "Update": {
                        "TableName": TABLE,
                        "Key": {"pk": {"S": f"new#{n}"}, "sk": {"S": "conv"}},
                        "UpdateExpression": "SET #c = if_not_exists(#c, :zero) + :one",
                        "ExpressionAttributeNames": {"#c": "count"},
                        "ExpressionAttributeValues": {":zero": {"N": "0"}, ":one": {"N": "1"}},
                    }
                },
            ]
        )

    def cancelled(n):
        try:
            transaction(n, True)
        except dynamodb.exceptions.TransactionCanceledException:
            return
        raise AssertionError("the transaction was not cancelled")

    return {
        "PutItem": lambda n: dynamodb.put_item(TableName=TABLE, Item=message(f"put#{n}", "msg#000", n)),
        "TransactWriteItems": lambda n: transaction(n, False),
        "TransactWriteItems cancelled": cancelled,
        "GetItem": lambda n: dynamodb.get_item(TableName=TABLE, Key={"pk": {"S": "user#3"}, "sk": {"S": "msg#004"}}),
        "Query": lambda n: dynamodb.query(
            TableName=TABLE,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": "user#3"}},
        ),
        "Query gsi1": lambda n: dynamodb.query(
            TableName=TABLE,
            IndexName="gsi1",
            KeyConditionExpression="gsi1pk = :pk",
            ExpressionAttributeValues={":pk": {"S": "conv#7"}},
            Limit=10,
        ),
    }


def timed(operation, least=3, most=200, seconds=1.5):
    """The median seconds of `operation`, run `least` to `most` times within about `seconds`."""
    times = []
    started = time.monotonic()
    while len(times) < least or (len(times) < most and time.monotonic() - started < seconds):
        n = uuid.uuid4().int % 10**12
        t = time.perf_counter()
        operation(n)
        times.append(time.perf_counter() - t)
    return statistics.median(times), len(times)


def peak_rss_mib():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def one(variant, sizes):
    """This process's figures for one variant: {size: {operation: [median s, runs]}}."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    dynamodb = client(serve(variant == "patched"))
    create_table(dynamodb)
    figures = {}
    for size in sizes:
        fill(size)
        ops = requests(dynamodb)
        figures[size] = {name: timed(ops[name]) for name in OPERATIONS}
        figures[size]["peak RSS MiB"] = peak_rss_mib()
    return figures


def main(argv):
    if argv[:1] == ["one"]:
        print(json.dumps(one(argv[1], [int(s) for s in argv[2:]])))
        return
    small, large = (int(argv[0]) if argv else 1000), (int(argv[1]) if len(argv) > 1 else 100_000)
    results = {}
    for variant in ["plain", "patched"]:
        out = subprocess.run(
            [sys.executable, __file__, "one", variant, str(small), str(large)], check=True, capture_output=True, text=True
        ).stdout
        results[variant] = {int(k): v for k, v in json.loads(out).items()}
    print(f"{'operation':<30} {'variant':<8} {small:>9,} items {large:>9,} items   ratio")
    for name in OPERATIONS:
        for variant, figures in results.items():
            (a, _), (b, runs) = figures[small][name], figures[large][name]
            print(f"{name:<30} {variant:<8} {a * 1000:>12.2f} ms {b * 1000:>12.2f} ms {b / a:>7.1f}×  ({runs} runs)")
    for variant, figures in results.items():
        print(f"peak RSS, {variant}: {figures[large]['peak RSS MiB']:.0f} MiB")


if __name__ == "__main__":
    main(sys.argv[1:])
