"""The local event source mapping against real queues on the local AWS emulator
($AWS_ENDPOINT_URL, started by scripts/test.sh), with a stand-in for cargo lambda's invoke
endpoint that answers as it is told. And the template's functions read as the local stack
runs them.

  .venv/bin/python -m unittest discover -s scripts/tests
"""

import http.server
import json
import os
import sys
import threading
import time
import unittest
import uuid

import boto3

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import event_source  # noqa: E402
import local_aws  # noqa: E402


class Runtime:
    """A stand-in for cargo lambda's invoke endpoint: records each event; answers with
    what `answer(event)` returns: (status, headers, body)."""

    def __init__(self):
        self.events = []
        self.answer = lambda event: (200, {}, {})
        runtime = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                event = json.loads(self.rfile.read(int(self.headers["content-length"])))
                runtime.events.append((self.path, event))
                status, headers, body = runtime.answer(event)
                payload = json.dumps(body).encode()
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def bodies(event):
    return [record["body"] for record in event["Records"]]


@unittest.skipUnless(os.environ.get("AWS_ENDPOINT_URL"), "needs the local AWS emulator (scripts/test.sh starts it)")
class EventSourceMappingTest(unittest.TestCase):
    def setUp(self):
        self.sqs = boto3.client("sqs")
        name = f"esm-{uuid.uuid4().hex[:10]}"
        self.dlq = self.sqs.create_queue(QueueName=f"{name}-dlq.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
        dlq_arn = self.sqs.get_queue_attributes(QueueUrl=self.dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self.queue = self.sqs.create_queue(
            QueueName=f"{name}.fifo",
            Attributes={
                "FifoQueue": "true",
                "VisibilityTimeout": "1",
                "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 2}),
            },
        )["QueueUrl"]
        self.arn = self.sqs.get_queue_attributes(QueueUrl=self.queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self.runtime = Runtime()
        self.lines = []

    def tearDown(self):
        self.runtime.close()

    def mapping(self, batch_size=10, report=True, invoke_url=None):
        source = {"queue_url": self.queue, "queue_arn": self.arn, "batch_size": batch_size, "report_batch_item_failures": report}
        return event_source.EventSourceMapping(
            self.sqs, "inbound", source, invoke_url or self.runtime.url, wait_seconds=0, log=self.lines.append
        )

    def send(self, *bodies_and_groups):
        for body, group in bodies_and_groups:
            self.sqs.send_message(QueueUrl=self.queue, MessageBody=body, MessageGroupId=group, MessageDeduplicationId=body)

    def left(self, queue):
        """What a queue still holds, once everything in flight is visible again."""
        time.sleep(1.2)
        found = []
        for _ in range(5):
            messages = self.sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
            found += [m["Body"] for m in messages]
            if not messages:
                break
        return sorted(found)

    def test_partial_batch_failures_delete_the_rest_and_keep_failing_records_until_redrive(self):
        self.send(("a", "user-1"), ("b", "user-2"), ("c", "user-3"))

        def answer(event):
            failing = [r["messageId"] for r in event["Records"] if r["body"] == "b"]
            return 200, {}, {"batchItemFailures": [{"itemIdentifier": i} for i in failing]}

        self.runtime.answer = answer
        mapping = self.mapping()
        self.assertEqual(mapping.poll_once(), 3)
        path, event = self.runtime.events[0]
        self.assertEqual(path, "/2015-03-31/functions/inbound/invocations")
        self.assertEqual(sorted(bodies(event)), ["a", "b", "c"])
        record = event["Records"][0]
        self.assertEqual(record["eventSource"], "aws:sqs")
        self.assertEqual(record["eventSourceARN"], self.arn)
        self.assertEqual(record["attributes"]["ApproximateReceiveCount"], "1")
        self.assertIn(record["attributes"]["MessageGroupId"], {"user-1", "user-2", "user-3"})
        self.assertTrue(record["receiptHandle"])

        # b comes back after the visibility timeout, with its receive count, and fails again.
        time.sleep(1.2)
        self.assertEqual(mapping.poll_once(), 1)
        retried = self.runtime.events[1][1]["Records"]
        self.assertEqual([r["body"] for r in retried], ["b"])
        self.assertEqual(retried[0]["attributes"]["ApproximateReceiveCount"], "2")
        # Past maxReceiveCount, SQS moves it to the dead-letter queue.
        time.sleep(1.2)
        mapping.poll_once()
        self.assertEqual(self.left(self.queue), [])
        self.assertEqual(self.left(self.dlq), ["b"])
        self.assertIn("[inbound] 3 record(s)", self.lines[0])
        self.assertIn("1 left for a retry", self.lines[0])

    def test_a_function_error_leaves_the_whole_batch(self):
        self.send(("a", "g1"), ("b", "g2"))
        self.runtime.answer = lambda event: (200, {"X-Amz-Function-Error": "Unhandled"}, {"errorType": "Boom", "errorMessage": "x"})
        self.mapping().poll_once()
        self.runtime.answer = lambda event: (500, {}, {"errorType": "Runtime", "errorMessage": "crashed"})
        time.sleep(1.2)
        self.mapping().poll_once()
        self.assertEqual([len(event["Records"]) for _, event in self.runtime.events], [2, 2])
        # Received twice, neither deleted: past maxReceiveCount (2) SQS redrives them.
        self.assertEqual(self.left(self.queue) + self.left(self.dlq), ["a", "b"])

    def test_an_unknown_item_identifier_fails_the_whole_batch(self):
        self.send(("a", "g1"), ("b", "g2"))
        self.runtime.answer = lambda event: (200, {}, {"batchItemFailures": [{"itemIdentifier": "not-in-batch"}]})
        self.mapping().poll_once()
        self.assertEqual(self.left(self.queue), ["a", "b"])

    def test_without_report_batch_item_failures_a_success_deletes_everything(self):
        self.send(("a", "g1"), ("b", "g2"))
        self.runtime.answer = lambda event: (200, {}, {"batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]})
        self.mapping(report=False).poll_once()
        self.assertEqual(self.left(self.queue), [])

    def test_batches_keep_to_the_batch_size(self):
        self.send(*[(f"m{i}", f"g{i}") for i in range(5)])
        mapping = self.mapping(batch_size=2)
        while mapping.poll_once():
            pass
        sizes = [len(event["Records"]) for _, event in self.runtime.events]
        self.assertEqual(sum(sizes), 5)
        self.assertLessEqual(max(sizes), 2)
        self.assertEqual(self.left(self.queue), [])

    def test_an_unreachable_runtime_returns_the_batch_at_once(self):
        self.send(("a", "g1"))
        self.runtime.close()
        mapping = self.mapping(invoke_url=self.runtime.url)
        mapping.poll_once()
        messages = self.sqs.receive_message(QueueUrl=self.queue, WaitTimeSeconds=0).get("Messages", [])
        self.assertEqual([m["Body"] for m in messages], ["a"], "visible again without waiting for the timeout")


class TemplateFunctionsTest(unittest.TestCase):
    CREATED = {
        "InboundQueue": {"Ref": "http://q/inbound.fifo", "Arn": "arn:inbound", "QueueName": "s-inbound.fifo"},
        "InboundDeadLetterQueue": {"Ref": "http://q/inbound-dlq.fifo", "Arn": "arn:idlq", "QueueName": "s-inbound-dlq.fifo"},
        "OutboundQueue": {"Ref": "http://q/outbound.fifo", "Arn": "arn:outbound", "QueueName": "s-outbound.fifo"},
        "OutboundDeadLetterQueue": {"Ref": "http://q/outbound-dlq.fifo", "Arn": "arn:odlq", "QueueName": "s-outbound-dlq.fifo"},
        "BridgeTable": {"Ref": "s-bridge"},
    }

    def created_for(self, template):
        """Every queue and table of the template, named as `create` would name them."""
        created = dict(self.CREATED)
        for logical, resource in template["Resources"].items():
            if resource["Type"] in ("AWS::SQS::Queue", "AWS::DynamoDB::Table") and logical not in created:
                created[logical] = {"Ref": f"http://q/{logical}", "Arn": f"arn:{logical}", "QueueName": logical}
        return created

    def test_the_templates_functions_with_their_sources_and_environment(self):
        template = local_aws.load_template()
        found = {f["name"]: f for f in local_aws.functions("s", self.created_for(template), template)}
        for name in ("callback", "inbound", "dispatch", "api"):
            self.assertIn(name, found)
        self.assertEqual(found["callback"]["sqs_sources"], [])
        self.assertIn({"method": "POST", "path": "/wechat/{channel}"}, found["callback"]["http_routes"])
        self.assertEqual(
            found["inbound"]["sqs_sources"],
            [{"queue_url": "http://q/inbound.fifo", "queue_arn": "arn:inbound", "batch_size": 10, "report_batch_item_failures": True}],
        )
        self.assertEqual(found["dispatch"]["sqs_sources"][0]["queue_url"], "http://q/outbound.fifo")
        self.assertEqual(found["inbound"]["env"]["TABLE_NAME"], "s-bridge")
        self.assertEqual(found["inbound"]["env"]["INBOUND_DLQ_URL"], "http://q/inbound-dlq.fifo")
        self.assertEqual(found["api"]["env"]["WXBRIDGE_CONFIG_SECRET"], "wxbridge/config", "a parameter's default")

    def test_a_new_function_with_its_queue_is_picked_up_from_the_template(self):
        template = local_aws.load_template()
        template["Resources"]["PushQueue"] = {
            "Type": "AWS::SQS::Queue",
            "Properties": {"QueueName": {"Fn::Sub": "${AWS::StackName}-push.fifo"}, "FifoQueue": True},
        }
        template["Resources"]["PushFunction"] = {
            "Type": "AWS::Serverless::Function",
            "Metadata": {"BuildMethod": "rust-cargolambda", "BuildProperties": {"Binary": "push"}},
            "Properties": {
                "Timeout": 30,
                "Environment": {"Variables": {"PUSH_QUEUE_URL": {"Ref": "PushQueue"}, "TABLE_NAME": {"Ref": "BridgeTable"}}},
                "Events": {"Push": {"Type": "SQS", "Properties": {"Queue": {"Fn::GetAtt": ["PushQueue", "Arn"]}, "BatchSize": 5}}},
            },
        }
        push = next(f for f in local_aws.functions("s", self.created_for(template), template) if f["name"] == "push")
        self.assertEqual(push["env"], {"PUSH_QUEUE_URL": "http://q/PushQueue", "TABLE_NAME": "s-bridge"})
        self.assertEqual(push["timeout"], 30)
        self.assertEqual(
            push["sqs_sources"],
            [{"queue_url": "http://q/PushQueue", "queue_arn": "arn:PushQueue", "batch_size": 5, "report_batch_item_failures": False}],
        )


class FailedIdsTest(unittest.TestCase):
    def test_what_lambda_leaves_on_the_queue(self):
        ids = ["m1", "m2", "m3"]
        self.assertEqual(event_source.failed_ids(ids, None, True), set(ids))
        self.assertEqual(event_source.failed_ids(ids, {}, True), set())
        self.assertEqual(event_source.failed_ids(ids, None, False), set(ids))
        self.assertEqual(event_source.failed_ids(ids, {"batchItemFailures": []}, True), set())
        self.assertEqual(event_source.failed_ids(ids, {"batchItemFailures": [{"itemIdentifier": "m2"}]}, True), {"m2"})
        self.assertEqual(event_source.failed_ids(ids, {"batchItemFailures": [{"itemIdentifier": ""}]}, True), set(ids))
        self.assertEqual(event_source.failed_ids(ids, {"batchItemFailures": [{"nope": 1}]}, True), set(ids))
        self.assertEqual(event_source.failed_ids(ids, {"batchItemFailures": [{"itemIdentifier": "m2"}]}, False), set())


if __name__ == "__main__":
    unittest.main()
