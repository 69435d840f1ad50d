#!/usr/bin/env python3
"""Local AWS resources from template.yaml, on the moto server at $AWS_ENDPOINT_URL.

  create STACK            create every SQS queue and DynamoDB table template.yaml declares,
                          print the queue URLs and table names as KEY=VALUE lines
  tail QUEUE_URL          print what lands in a queue (and take it off), until Ctrl-C

The template is the one source of truth: names and attributes come from it, with
${AWS::StackName} set to STACK. Intrinsics the local stack cannot resolve are refused.
"""

import json
import os
import re
import sys
import time

import boto3
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class CfnLoader(yaml.SafeLoader):
    """Reads CloudFormation's short-form intrinsics (!Ref, !Sub, !GetAtt, ...) as dicts."""


def _intrinsic(loader, suffix, node):
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


CfnLoader.add_multi_constructor("!", _intrinsic)


def load_template():
    with open(os.path.join(ROOT, "template.yaml"), encoding="utf-8") as f:
        return yaml.load(f, Loader=CfnLoader)


def resolve(value, stack, created):
    """Resolves the intrinsics a queue or table definition uses."""
    if isinstance(value, dict):
        if "Fn::Sub" in value:
            return re.sub(r"\$\{AWS::StackName\}", stack, value["Fn::Sub"])
        if "Fn::GetAtt" in value:
            logical, attribute = value["Fn::GetAtt"]
            return created[logical][attribute]
        if "Ref" in value:
            return created[value["Ref"]]["Ref"]
        return {k: resolve(v, stack, created) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, stack, created) for v in value]
    return value


def depends_on(value):
    """Logical ids a definition refers to."""
    if isinstance(value, dict):
        found = set()
        for key, inner in value.items():
            if key == "Fn::GetAtt":
                found.add(inner[0])
            elif key == "Ref":
                found.add(inner)
            else:
                found |= depends_on(inner)
        return found
    if isinstance(value, list):
        return set().union(*(depends_on(v) for v in value)) if value else set()
    return set()


SQS_ATTRIBUTES = {
    "FifoQueue": "FifoQueue",
    "DeduplicationScope": "DeduplicationScope",
    "FifoThroughputLimit": "FifoThroughputLimit",
    "VisibilityTimeout": "VisibilityTimeout",
    "MessageRetentionPeriod": "MessageRetentionPeriod",
    "ContentBasedDeduplication": "ContentBasedDeduplication",
    "DelaySeconds": "DelaySeconds",
    "ReceiveMessageWaitTimeSeconds": "ReceiveMessageWaitTimeSeconds",
}


def create_queue(sqs, props):
    attributes = {
        attr: str(props[key]).lower() if isinstance(props[key], bool) else str(props[key])
        for key, attr in SQS_ATTRIBUTES.items()
        if key in props
    }
    if "RedrivePolicy" in props:
        attributes["RedrivePolicy"] = json.dumps(props["RedrivePolicy"])
    url = sqs.create_queue(QueueName=props["QueueName"], Attributes=attributes)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return {"Ref": url, "Arn": arn, "QueueName": props["QueueName"]}


def create_table(dynamodb, props):
    args = {
        "TableName": props["TableName"],
        "AttributeDefinitions": props["AttributeDefinitions"],
        "KeySchema": props["KeySchema"],
        "BillingMode": props.get("BillingMode", "PAY_PER_REQUEST"),
    }
    if props.get("GlobalSecondaryIndexes"):
        args["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
    dynamodb.create_table(**args)
    ttl = props.get("TimeToLiveSpecification")
    if ttl and ttl.get("Enabled"):
        dynamodb.update_time_to_live(
            TableName=props["TableName"],
            TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["AttributeName"]},
        )
    return {"Ref": props["TableName"]}


def create(stack):
    resources = load_template()["Resources"]
    wanted = {k: v for k, v in resources.items() if v["Type"] in ("AWS::SQS::Queue", "AWS::DynamoDB::Table")}
    sqs, dynamodb = boto3.client("sqs"), boto3.client("dynamodb")
    created = {}
    while len(created) < len(wanted):
        ready = [k for k, v in wanted.items() if k not in created and depends_on(v.get("Properties", {})) <= set(created)]
        if not ready:
            sys.exit(f"cannot order {sorted(set(wanted) - set(created))}: unresolved references")
        for logical in ready:
            props = resolve(wanted[logical].get("Properties", {}), stack, created)
            kind = wanted[logical]["Type"]
            created[logical] = create_queue(sqs, props) if kind == "AWS::SQS::Queue" else create_table(dynamodb, props)
    for logical in wanted:
        print(f"{logical}={created[logical]['Ref']}")


def tail(queue_url):
    sqs = boto3.client("sqs")
    while True:
        messages = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1, MessageSystemAttributeNames=["All"]
        ).get("Messages", [])
        for message in messages:
            group = message.get("Attributes", {}).get("MessageGroupId", "")
            print(f"[{queue_url.rsplit('/', 1)[-1]}] group={group}\n{json.dumps(json.loads(message['Body']), indent=2, ensure_ascii=False)}", flush=True)
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        if not messages:
            time.sleep(0.5)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "create":
        create(sys.argv[2])
    elif len(sys.argv) == 3 and sys.argv[1] == "tail":
        try:
            tail(sys.argv[2])
        except KeyboardInterrupt:
            pass
    else:
        sys.exit(__doc__)
