#!/usr/bin/env python3
"""Local AWS resources from template.yaml, on the moto server at $AWS_ENDPOINT_URL.

  create STACK [JSON]     create every SQS queue, DynamoDB table and S3 bucket template.yaml
                          declares, print the queue URLs, table and bucket names as KEY=VALUE lines (and, with
                          JSON, write every created resource's Ref, Arn and name there)
  functions STACK JSON    print the template's functions as JSON, with what the local stack
                          needs to run them: binary, timeout, memory size, environment
                          (references resolved against the resources in JSON), HTTP routes,
                          SQS event sources
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


def resolve(value, stack, created, parameters=None):
    """Resolves the intrinsics a queue, table or function environment uses. Parameters
    resolve to their defaults."""
    parameters = parameters or {}
    if isinstance(value, dict):
        if "Fn::Sub" in value:
            return re.sub(r"\$\{AWS::StackName\}", stack, value["Fn::Sub"])
        if "Fn::GetAtt" in value:
            logical, attribute = value["Fn::GetAtt"]
            return created[logical][attribute]
        if "Ref" in value:
            if value["Ref"] in parameters:
                return parameters[value["Ref"]]
            return created[value["Ref"]]["Ref"]
        return {k: resolve(v, stack, created, parameters) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, stack, created, parameters) for v in value]
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


def bucket_name(stack, logical, props):
    """The template's BucketName, else one CloudFormation-like: the stack and the logical id,
    lowercased to what S3 takes."""
    if props.get("BucketName"):
        return props["BucketName"]
    name = re.sub(r"[^a-z0-9-]+", "-", f"{stack}-{logical}".lower()).strip("-")
    return name[:63]


def create_bucket(s3, stack, logical, props):
    name = bucket_name(stack, logical, props)
    s3.create_bucket(Bucket=name)
    rules = props.get("LifecycleConfiguration", {}).get("Rules", [])
    if rules:
        s3.put_bucket_lifecycle_configuration(
            Bucket=name,
            LifecycleConfiguration={
                "Rules": [
                    {
                        "ID": rule["Id"],
                        "Status": rule["Status"],
                        "Filter": {"Prefix": rule.get("Prefix", "")},
                        "Expiration": {"Days": int(rule["ExpirationInDays"])},
                    }
                    for rule in rules
                ]
            },
        )
    return {"Ref": name, "Arn": f"arn:aws:s3:::{name}"}


KINDS = ("AWS::SQS::Queue", "AWS::DynamoDB::Table", "AWS::S3::Bucket")


def create(stack, out=None):
    template = load_template()
    resources = template["Resources"]
    parameters = {k: str(v.get("Default", "")) for k, v in template.get("Parameters", {}).items()}
    wanted = {k: v for k, v in resources.items() if v["Type"] in KINDS}
    sqs, dynamodb, s3 = boto3.client("sqs"), boto3.client("dynamodb"), boto3.client("s3")
    created = {}
    while len(created) < len(wanted):
        ready = [
            k
            for k, v in wanted.items()
            if k not in created and depends_on(v.get("Properties", {})) - set(parameters) <= set(created)
        ]
        if not ready:
            sys.exit(f"cannot order {sorted(set(wanted) - set(created))}: unresolved references")
        for logical in ready:
            props = resolve(wanted[logical].get("Properties", {}), stack, created, parameters)
            kind = wanted[logical]["Type"]
            if kind == "AWS::SQS::Queue":
                created[logical] = create_queue(sqs, props)
            elif kind == "AWS::S3::Bucket":
                created[logical] = create_bucket(s3, stack, logical, props)
            else:
                created[logical] = create_table(dynamodb, props)
    for logical in wanted:
        print(f"{logical}={created[logical]['Ref']}")
    if out:
        with open(out, "w", encoding="utf-8") as f:
            json.dump(created, f, indent=2)
    return created


def rate_secs(expression, logical):
    """A schedule's `rate(N unit)` in seconds (the local stack runs rates, not cron)."""
    units = {"minute": 60, "minutes": 60, "hour": 3600, "hours": 3600, "day": 86400, "days": 86400}
    parts = expression.strip().removeprefix("rate(").removesuffix(")").split()
    if len(parts) != 2 or not parts[0].isdigit() or parts[1] not in units:
        sys.exit(f"{logical}: a schedule the local stack cannot run: {expression}")
    return int(parts[0]) * units[parts[1]]


def functions(stack, created, template=None):
    """The template's functions as the local stack runs them: for each, its binary (the
    cargo-lambda build property, else its logical id), its timeout and memory size, its
    environment (Globals first), its HTTP API routes and its SQS event sources (queue URL,
    batch size, whether it reports partial batch failures)."""
    template = template or load_template()
    parameters = {k: str(v.get("Default", "")) for k, v in template.get("Parameters", {}).items()}
    global_function = template.get("Globals", {}).get("Function", {})
    global_env = global_function.get("Environment", {}).get("Variables", {})
    found = []
    for logical, resource in template["Resources"].items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        props = resource.get("Properties", {})
        binary = resource.get("Metadata", {}).get("BuildProperties", {}).get("Binary") or logical
        variables = {**global_env, **props.get("Environment", {}).get("Variables", {})}
        env = {k: str(resolve(v, stack, created, parameters)) for k, v in variables.items()}
        routes, sources, schedules = [], [], []
        for event in props.get("Events", {}).values():
            event_props = event.get("Properties", {})
            if event.get("Type") == "Schedule":
                schedules.append({"every_secs": rate_secs(event_props["Schedule"], logical)})
            elif event.get("Type") in ("HttpApi", "Api"):
                routes.append({"method": event_props.get("Method", "ANY").upper(), "path": event_props.get("Path", "/")})
            elif event.get("Type") == "SQS":
                queue = event_props["Queue"]
                logical_queue = queue["Fn::GetAtt"][0] if isinstance(queue, dict) and "Fn::GetAtt" in queue else None
                if logical_queue is None or logical_queue not in created:
                    sys.exit(f"{logical}: an SQS event source the local stack cannot resolve: {queue}")
                sources.append(
                    {
                        "queue_url": created[logical_queue]["Ref"],
                        "queue_arn": created[logical_queue]["Arn"],
                        "batch_size": int(event_props.get("BatchSize", 10)),
                        "report_batch_item_failures": "ReportBatchItemFailures"
                        in event_props.get("FunctionResponseTypes", []),
                    }
                )
        found.append(
            {
                "logical_id": logical,
                "name": binary,
                "timeout": int(props.get("Timeout", global_function.get("Timeout", 3))),
                "memory_size": int(props.get("MemorySize", global_function.get("MemorySize", 128))),
                "env": env,
                "http_routes": routes,
                "sqs_sources": sources,
                "schedules": schedules,
            }
        )
    return found


def tail(queue_url):
    sqs = boto3.client("sqs")
    while True:
        # No long poll: moto spins through one while a message group is held (docs/local-stack.md).
        messages = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0, MessageSystemAttributeNames=["All"]
        ).get("Messages", [])
        for message in messages:
            group = message.get("Attributes", {}).get("MessageGroupId", "")
            print(f"[{queue_url.rsplit('/', 1)[-1]}] group={group}\n{json.dumps(json.loads(message['Body']), indent=2, ensure_ascii=False)}", flush=True)
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        if not messages:
            time.sleep(0.5)


if __name__ == "__main__":
    if len(sys.argv) in (3, 4) and sys.argv[1] == "create":
        create(sys.argv[2], sys.argv[3] if len(sys.argv) == 4 else None)
    elif len(sys.argv) == 4 and sys.argv[1] == "functions":
        with open(sys.argv[3], encoding="utf-8") as f:
            print(json.dumps(functions(sys.argv[2], json.load(f)), indent=2))
    elif len(sys.argv) == 3 and sys.argv[1] == "tail":
        try:
            tail(sys.argv[2])
        except KeyboardInterrupt:
            pass
    else:
        sys.exit(__doc__)
