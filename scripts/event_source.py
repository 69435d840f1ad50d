#!/usr/bin/env python3
"""Lambda's SQS event source mapping, locally: feeds the functions `cargo lambda watch`
runs from the queues on the local AWS emulator, the way Lambda does.

  event_source.py INVOKE_URL FUNCTIONS_JSON

FUNCTIONS_JSON is what `local_aws.py functions` prints. For every SQS event source of every
function, a poller receives batches (up to the source's BatchSize, at most 10 per receive
as SQS allows), invokes the function with the SQS event at
INVOKE_URL/2015-03-31/functions/NAME/invocations (cargo lambda's invoke endpoint), and
settles the answer as Lambda does:

- function error (an error answer, X-Amz-Function-Error, a timeout): nothing is deleted;
  the records come back after the queue's visibility timeout (or the backoff the function
  set on them);
- with ReportBatchItemFailures: every record not listed in batchItemFailures is deleted;
  an itemIdentifier that is empty or not in the batch fails the whole batch;
- without it: a successful invocation deletes the whole batch.

Records that keep failing are moved to the dead-letter queue by SQS itself (the queue's
RedrivePolicy, maxReceiveCount). Ctrl-C (SIGINT/SIGTERM) stops the pollers.
"""

import json
import signal
import sys
import threading
import time
import urllib.error
import urllib.request

import boto3


def sqs_record(message, queue_arn, region):
    """A received message as the record of the SQS event Lambda hands a function."""
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": {
            name: {
                "stringValue": value.get("StringValue"),
                "binaryValue": value.get("BinaryValue"),
                "stringListValues": [],
                "binaryListValues": [],
                "dataType": value.get("DataType"),
            }
            for name, value in message.get("MessageAttributes", {}).items()
        },
        "md5OfBody": message.get("MD5OfBody"),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }


def failed_ids(batch_ids, answer, report_batch_item_failures):
    """The message ids Lambda leaves on the queue, given the function's answer (`None`
    for a function error)."""
    if answer is None:
        return set(batch_ids)
    if not report_batch_item_failures:
        return set()
    failures = answer.get("batchItemFailures") if isinstance(answer, dict) else None
    if not failures:
        return set()
    ids = {f.get("itemIdentifier") if isinstance(f, dict) else None for f in failures}
    if None in ids or "" in ids or not ids <= set(batch_ids):
        return set(batch_ids)
    return ids


class EventSourceMapping:
    """One function fed from one queue."""

    def __init__(self, sqs, function, source, invoke_url, wait_seconds=1, invoke_timeout=900, log=print):
        self.sqs = sqs
        self.function = function
        self.queue_url = source["queue_url"]
        self.queue_arn = source["queue_arn"]
        self.batch_size = max(1, min(int(source.get("batch_size", 10)), 10))
        self.report = bool(source.get("report_batch_item_failures"))
        self.invoke_url = f"{invoke_url.rstrip('/')}/2015-03-31/functions/{function}/invocations"
        self.wait_seconds = wait_seconds
        self.invoke_timeout = invoke_timeout
        self.region = sqs.meta.region_name
        self.log = log
        self.queue_name = self.queue_url.rsplit("/", 1)[-1]

    def invoke(self, event):
        """The function's answer, or None for a function error."""
        request = urllib.request.Request(
            self.invoke_url,
            data=json.dumps(event).encode(),
            headers={"content-type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=self.invoke_timeout) as response:
                payload = response.read()
                if response.headers.get("X-Amz-Function-Error"):
                    self.log(f"[{self.function}] function error: {payload[:300]!r}")
                    return None
        except urllib.error.HTTPError as error:
            self.log(f"[{self.function}] invocation failed: HTTP {error.code} {error.read()[:300]!r}")
            return None
        try:
            answer = json.loads(payload) if payload.strip() else {}
        except ValueError:
            self.log(f"[{self.function}] unreadable answer: {payload[:300]!r}")
            return None
        if isinstance(answer, dict) and "errorType" in answer and "errorMessage" in answer:
            self.log(f"[{self.function}] function error: {answer['errorType']}: {answer['errorMessage']}")
            return None
        return answer

    def poll_once(self):
        """Receives one batch, invokes, settles. Returns how many records it handled."""
        messages = self.sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=self.batch_size,
            WaitTimeSeconds=self.wait_seconds,
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not messages:
            return 0
        event = {"Records": [sqs_record(m, self.queue_arn, self.region) for m in messages]}
        try:
            answer = self.invoke(event)
        except (urllib.error.URLError, ConnectionError) as error:
            # The local runtime is not there (yet): let the batch be received again at once
            # rather than after the visibility timeout.
            self.log(f"[{self.function}] cannot invoke ({error}); batch returned to {self.queue_name}")
            self.sqs.change_message_visibility_batch(
                QueueUrl=self.queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
                    for i, m in enumerate(messages)
                ],
            )
            time.sleep(1)
            return len(messages)
        except TimeoutError:
            answer = None
            self.log(f"[{self.function}] invocation timed out")
        failed = failed_ids([m["MessageId"] for m in messages], answer, self.report)
        done = [m for m in messages if m["MessageId"] not in failed]
        if done:
            self.sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)],
            )
        note = f", {len(failed)} left for a retry" if failed else ""
        self.log(f"[{self.function}] {len(messages)} record(s) from {self.queue_name}: {len(done)} done{note}")
        return len(messages)

    def run(self, stop):
        while not stop.is_set():
            try:
                self.poll_once()
            except Exception as error:  # the emulator restarting, a network blip: keep polling
                if stop.is_set():
                    break
                self.log(f"[{self.function}] poll failed: {error}")
                stop.wait(1)


def mappings(functions, invoke_url, sqs=None, **options):
    sqs = sqs or boto3.client("sqs")
    return [
        EventSourceMapping(sqs, function["name"], source, invoke_url, **options)
        for function in functions
        for source in function["sqs_sources"]
    ]


def main(invoke_url, functions_json):
    with open(functions_json, encoding="utf-8") as f:
        functions = json.load(f)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    threads = []
    for mapping in mappings(functions, invoke_url, log=lambda line: print(line, flush=True)):
        print(f"event source mapping: {mapping.queue_name} → {mapping.function} "
              f"(batch {mapping.batch_size}{', partial batch failures' if mapping.report else ''})", flush=True)
        thread = threading.Thread(target=mapping.run, args=(stop,), daemon=True)
        thread.start()
        threads.append(thread)
    while not stop.is_set():
        stop.wait(0.5)
    for thread in threads:
        thread.join(timeout=3)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
