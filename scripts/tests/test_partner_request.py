"""scripts/partner_request.sh: the URL it calls and what it signs, with curl stood in for by
a script that writes down its arguments (no network).

  python -m unittest discover -s scripts/tests -p 'test_partner_request.py'
"""

import hashlib
import hmac
import os
import subprocess
import tempfile
import unittest

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
SCRIPT = os.path.join(ROOT, "scripts", "partner_request.sh")
SECRET = "hotel-secret-456789"

FAKE_CURL = """#!/usr/bin/env bash
printf '%s\\n' "$@" > "$CURL_ARGS"
"""


class PartnerRequest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.addCleanup(self.dir.cleanup)
        curl = os.path.join(self.dir.name, "curl")
        with open(curl, "w") as f:
            f.write(FAKE_CURL)
        os.chmod(curl, 0o755)

    def call(self, api, method, path, body=""):
        """The arguments curl was called with, for WXBRIDGE_API=api."""
        args = os.path.join(self.dir.name, "args")
        env = dict(
            os.environ,
            PATH=self.dir.name + os.pathsep + os.environ["PATH"],
            CURL_ARGS=args,
            WXBRIDGE_API=api,
            WXBRIDGE_PARTNER="hotel-9",
            WXBRIDGE_SECRET=SECRET,
        )
        env.pop("WXBRIDGE_DRY_RUN", None)
        run = subprocess.run([SCRIPT, method, path, body], env=env, capture_output=True, text=True)
        self.assertEqual(run.returncode, 0, run.stderr)
        with open(args) as f:
            return f.read().splitlines()

    def url(self, api, path="/v1/messages"):
        args = self.call(api, "GET", path)
        return next(a for a in args if a.startswith("http"))

    def test_the_stacks_partner_api_url_is_taken_as_it_is(self):
        # The template's PartnerApiUrl output ends in /v1; the paths start with /v1 too.
        self.assertEqual(self.url("https://abc.execute-api.eu-west-1.amazonaws.com/v1"),
                         "https://abc.execute-api.eu-west-1.amazonaws.com/v1/messages")
        self.assertEqual(self.url("https://abc.execute-api.eu-west-1.amazonaws.com/v1/"),
                         "https://abc.execute-api.eu-west-1.amazonaws.com/v1/messages")

    def test_a_base_without_v1_is_taken_too(self):
        self.assertEqual(self.url("https://abc.execute-api.eu-west-1.amazonaws.com"),
                         "https://abc.execute-api.eu-west-1.amazonaws.com/v1/messages")
        self.assertEqual(self.url("http://127.0.0.1:9000/lambda-url/api/"),
                         "http://127.0.0.1:9000/lambda-url/api/v1/messages")
        self.assertEqual(self.url("http://127.0.0.1:9000/lambda-url/api", "/v1/conversations?app_user_id=u-42"),
                         "http://127.0.0.1:9000/lambda-url/api/v1/conversations?app_user_id=u-42")

    def test_the_signature_covers_the_path_as_the_api_receives_it(self):
        body = '{"conversation_id":"mp:o:hotel-9","client_message_id":"c-1","content":{"type":"text","text":"Hi"}}'
        args = self.call("https://abc.example/v1", "POST", "/v1/messages", body)
        headers = dict(a.split(": ", 1) for a in args if a.startswith("X-Wxbridge-"))
        signed = "\n".join([
            "POST", "/v1/messages", headers["X-Wxbridge-Timestamp"], headers["X-Wxbridge-Nonce"],
            hashlib.sha256(body.encode()).hexdigest(),
        ])
        expected = hmac.new(SECRET.encode(), signed.encode(), hashlib.sha256).hexdigest()
        self.assertEqual(headers["X-Wxbridge-Signature"], "v1=" + expected)
        self.assertEqual(headers["X-Wxbridge-Partner"], "hotel-9")
        self.assertIn(body, args)


if __name__ == "__main__":
    unittest.main()
