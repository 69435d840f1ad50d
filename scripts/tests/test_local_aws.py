"""The template's functions read as the local stack runs them (`local_aws.py functions`):
their event sources and environment, and a function added to the template picked up.
(Lambda's SQS event source mapping, which feeds those functions, is tested in Rust:
tools/devstack/tests/event_source.rs.)

  .venv/bin/python -m unittest discover -s scripts/tests
"""

import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import local_aws  # noqa: E402


class TemplateFunctionsTest(unittest.TestCase):
    CREATED = {
        "InboundQueue": {"Ref": "http://q/inbound.fifo", "Arn": "arn:inbound", "QueueName": "s-inbound.fifo"},
        "InboundDeadLetterQueue": {"Ref": "http://q/inbound-dlq.fifo", "Arn": "arn:idlq", "QueueName": "s-inbound-dlq.fifo"},
        "OutboundQueue": {"Ref": "http://q/outbound.fifo", "Arn": "arn:outbound", "QueueName": "s-outbound.fifo"},
        "OutboundDeadLetterQueue": {"Ref": "http://q/outbound-dlq.fifo", "Arn": "arn:odlq", "QueueName": "s-outbound-dlq.fifo"},
        "BridgeTable": {"Ref": "s-bridge"},
    }

    def created_for(self, template):
        """Every queue, table and bucket of the template, named as `create` would name them."""
        created = dict(self.CREATED)
        for logical, resource in template["Resources"].items():
            if resource["Type"] == "AWS::S3::Bucket":
                name = local_aws.bucket_name("s", logical, resource.get("Properties", {}))
                created[logical] = {"Ref": name, "Arn": f"arn:aws:s3:::{name}"}
            elif resource["Type"] in local_aws.KINDS and logical not in created:
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
        self.assertEqual(found["callback"]["timeout"], 6, "Globals' Timeout")
        self.assertEqual(found["inbound"]["timeout"], 90, "the function's own Timeout")
        self.assertEqual(found["callback"]["memory_size"], 256, "Globals' MemorySize")
        # The media function: fed by media.fifo, writing to the bucket the API reads.
        self.assertEqual(found["media"]["sqs_sources"][0]["queue_url"], "http://q/MediaQueue")
        self.assertEqual(found["media"]["env"]["MEDIA_BUCKET"], "s-mediabucket")
        self.assertEqual(found["api"]["env"]["MEDIA_BUCKET"], "s-mediabucket")
        self.assertEqual(found["inbound"]["env"]["MEDIA_QUEUE_URL"], "http://q/MediaQueue")
        self.assertEqual(found["dispatch"]["env"]["MEDIA_QUEUE_URL"], "http://q/MediaQueue")

    def test_a_bucket_without_a_name_is_named_as_s3_takes_it(self):
        self.assertEqual(local_aws.bucket_name("Wx_Stack", "MediaBucket", {}), "wx-stack-mediabucket")
        self.assertEqual(local_aws.bucket_name("s", "B", {"BucketName": "given"}), "given")
        self.assertLessEqual(len(local_aws.bucket_name("s" * 80, "MediaBucket", {})), 63)

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
        self.assertEqual(push["memory_size"], 256)
        self.assertEqual(
            push["sqs_sources"],
            [{"queue_url": "http://q/PushQueue", "queue_arn": "arn:PushQueue", "batch_size": 5, "report_batch_item_failures": False}],
        )


if __name__ == "__main__":
    unittest.main()
