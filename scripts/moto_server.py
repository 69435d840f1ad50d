"""The local AWS emulator: moto server, serving one DynamoDB request at a time.

moto server answers every request on a thread of its own, and its DynamoDB model is not
safe under concurrent requests: `transact_write_items` (moto/dynamodb/models/__init__.py,
`DynamoDBBackend.transact_write_items`) deep-copies each table it writes to, without a
lock, to roll back on failure, so

- a write landing in the same table during that copy raises `RuntimeError: dictionary
  changed size during iteration`, which moto answers as a bare HTTP 500;
- a transaction cancelled by a condition restores the whole table from that copy, which
  erases every write other requests made to the table in the meantime, acknowledged ones
  included.

DynamoDB applies each request atomically, so the emulator takes DynamoDB's requests one
at a time (a lock around the WSGI application for requests whose X-Amz-Target names
DynamoDB). Everything else — SQS, Secrets Manager, the moto API — is served as moto
serves it. The command line is moto_server's own (`-H HOST -p PORT`).
scripts/tests/test_emulator.py shows both failures on plain moto and neither here.

It also counts the requests it serves by service and operation (`X-Amz-Target`, else the
method and the service named in the path), which `GET /_wxbridge/requests` answers as JSON:
what `make load` reads, before and after a run, for the AWS requests per message.

  .venv/bin/python scripts/moto_server.py -H 127.0.0.1 -p 5000
"""

import collections
import json
import sys
import threading

DYNAMODB_TARGET = "DynamoDB_"


def one_dynamodb_request_at_a_time(app):
    """`app` (a WSGI application) with DynamoDB's requests served one at a time."""
    lock = threading.Lock()

    def serialized(environ, start_response):
        if not environ.get("HTTP_X_AMZ_TARGET", "").startswith(DYNAMODB_TARGET):
            return app(environ, start_response)
        with lock:
            # The whole answer is produced under the lock (moto's answers are not streamed).
            return list(app(environ, start_response))

    return serialized


COUNTS_PATH = "/_wxbridge/requests"


def counting_requests(app):
    """`app` with its requests counted by operation, the counts served at COUNTS_PATH."""
    counts = collections.Counter()
    lock = threading.Lock()

    def counted(environ, start_response):
        if environ.get("PATH_INFO") == COUNTS_PATH:
            with lock:
                body = json.dumps(dict(counts)).encode()
            start_response("200 OK", [("Content-Type", "application/json")])
            return [body]
        operation = environ.get("HTTP_X_AMZ_TARGET") or operation_of_rest_request(environ)
        with lock:
            counts[operation] += 1
        return app(environ, start_response)

    return counted


def operation_of_rest_request(environ):
    """S3 and the moto API name no target: the method and the first part of the path."""
    first = environ.get("PATH_INFO", "/").lstrip("/").split("/", 1)[0]
    kind = "moto-api" if first == "moto-api" else "s3"
    return f"{kind}.{environ.get('REQUEST_METHOD', '?')}"


def main(argv=None):
    import moto.server
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    class SerializedDynamoDB(DomainDispatcherApplication):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self._serialized = counting_requests(one_dynamodb_request_at_a_time(super().__call__))

        def __call__(self, environ, start_response):
            return self._serialized(environ, start_response)

    # moto_server's own main (its options, its request handler), with this application.
    moto.server.DomainDispatcherApplication = SerializedDynamoDB
    moto.server.main(argv if argv is not None else sys.argv[1:])


if __name__ == "__main__":
    main()
