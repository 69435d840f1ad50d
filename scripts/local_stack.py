#!/usr/bin/env python3
"""Helpers of the local stack (scripts/lib.sh `start_stack`), standard library only.

  port PREFERRED                    PREFERRED when it is free on 127.0.0.1, else a free port
  config SOURCE OUT FAKE_URL DESK_URL
                                    the configuration the local stack runs with: SOURCE with
                                    wechat_api_base set to the WeChat fake and every partner's
                                    webhook_url pointed at the partner desk (/hooks/{partner})
  env OUT KEY=VALUE…                the local stack's environment file for the Lambda runner
                                    (lambda-runner --env-file): what every function gets on
                                    top of its own variables from the template
  wait URL SECONDS                  wait until URL answers HTTP at all (any status)
  warm INVOKE_URL FUNCTIONS_JSON    start every function once (an HTTP GET for HTTP
                                    functions, an empty SQS batch for the others) and fail
                                    with the function's answer if one cannot start
"""

import json
import socket
import sys
import time
import urllib.error
import urllib.request


def port(preferred):
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", int(preferred)))
        except OSError:
            s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def config(source, out, fake_url, desk_url):
    with open(source, encoding="utf-8") as f:
        document = json.load(f)
    document["wechat_api_base"] = fake_url
    for partner in document.get("partners", []):
        partner["webhook_url"] = f"{desk_url}/hooks/{partner['id']}"
        # The desk serves every partner's avatar, for registering its sub-merchant.
        if "sub_merchant" in partner:
            partner["sub_merchant"]["avatar_url"] = f"{desk_url}/avatars/{partner['id']}.png"
    with open(out, "w", encoding="utf-8") as f:
        json.dump(document, f, indent=2, ensure_ascii=False)


def env(out, pairs):
    with open(out, "w", encoding="utf-8") as f:
        for pair in pairs:
            key, value = pair.split("=", 1)
            if "\n" in value:
                sys.exit(f"{key}: a value with a newline cannot go in an environment file")
            f.write(f"{key}={value}\n")


def answers(url, timeout=2):
    try:
        urllib.request.urlopen(url, timeout=timeout).read()
        return True
    except urllib.error.HTTPError:
        return True
    except (urllib.error.URLError, OSError):
        return False


def wait(url, seconds):
    deadline = time.time() + float(seconds)
    while time.time() < deadline:
        if answers(url):
            return
        time.sleep(0.2)
    sys.exit(f"{url} did not answer within {seconds} s")


def warm(invoke_url, functions_json):
    with open(functions_json, encoding="utf-8") as f:
        functions = json.load(f)
    failed = []
    for function in functions:
        name = function["name"]
        started = time.time()
        event = None
        if function["sqs_sources"]:
            event = b'{"Records":[]}'
        elif function.get("schedules"):
            event = b'{"source":"aws.events","detail-type":"Scheduled Event","detail":{}}'
        if event is not None:
            request = urllib.request.Request(
                f"{invoke_url}/2015-03-31/functions/{name}/invocations",
                data=event,
                headers={"content-type": "application/json"},
                method="POST",
            )
        else:
            request = urllib.request.Request(f"{invoke_url}/lambda-url/{name}/", method="GET")
        try:
            with urllib.request.urlopen(request, timeout=900) as response:
                body = response.read()
                error = response.headers.get("X-Amz-Function-Error")
                status = response.status
        except urllib.error.HTTPError as e:
            body, error, status = e.read(), e.headers.get("X-Amz-Function-Error"), e.code
        # HTTP functions answer a bare GET as they see fit (404, 401…); a runtime that
        # cannot start answers 5xx or a function error.
        if error or status >= 500:
            failed.append(f"{name}: HTTP {status} {body[:500].decode(errors='replace')}")
        print(f"  {name:<10} ready ({time.time() - started:.1f} s)", flush=True)
    if failed:
        sys.exit("functions that did not start:\n  " + "\n  ".join(failed))


if __name__ == "__main__":
    command, args = (sys.argv[1], sys.argv[2:]) if len(sys.argv) > 1 else ("", [])
    if command == "port" and len(args) == 1:
        print(port(args[0]))
    elif command == "config" and len(args) == 4:
        config(*args)
    elif command == "env" and len(args) >= 1:
        env(args[0], args[1:])
    elif command == "wait" and len(args) == 2:
        wait(*args)
    elif command == "warm" and len(args) == 2:
        warm(*args)
    else:
        sys.exit(__doc__)
