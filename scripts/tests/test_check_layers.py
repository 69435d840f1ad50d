"""scripts/check_layers.sh on crate graphs that break its rules on purpose: each fails the
check, naming the crate, the dependency and the path to it; the graph as it should be
passes. The graphs are `cargo metadata` output written here (a small workspace laid out
as this one), and the workspace's own with one dependency added.

  .venv/bin/python -m unittest discover -s scripts/tests
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CHECK = os.path.join(ROOT, "scripts", "check_layers.sh")

# crate → (where it sits, its dependencies, its dev-dependencies): the workspace's shape.
WORKSPACE = {
    "wxbridge-wechat": ("shared/wechat", ["serde"], []),
    "wxbridge-core": ("shared/core", ["wxbridge-wechat", "serde"], ["wxbridge-testkit"]),
    "wxbridge-aws": ("shared/aws", ["wxbridge-core", "aws-sdk-sqs"], []),
    "wxbridge-http": ("shared/http", ["wxbridge-core", "reqwest"], ["axum"]),
    "wxbridge-lambda": ("shared/lambda", ["wxbridge-aws", "wxbridge-http", "lambda_runtime"], ["wxbridge-testkit"]),
    "wxbridge-testkit": ("shared/testkit", ["wxbridge-core"], []),
    "wxbridge-testkit-aws": ("shared/testkit-aws", ["wxbridge-aws", "aws-sdk-sqs"], ["wxbridge-lambda"]),
    "callback": ("functions/callback", ["wxbridge-lambda"], []),
    "media": ("functions/media", ["wxbridge-lambda"], []),
    "wechat-fake": ("shared/wechat-fake", ["axum"], ["reqwest"]),
    "wxbridge-devstack": ("tools/devstack", ["wxbridge-aws", "wxbridge-testkit-aws", "reqwest"], ["wechat-fake"]),
    "wxbridge-attack": ("tools/attack", ["wxbridge-devstack"], []),
    "wxbridge-integration": ("tests", ["wxbridge-lambda", "wxbridge-testkit-aws"], ["wechat-fake"]),
}
# Crates from crates.io: (their dependencies).
REGISTRY = {"serde": [], "aws-sdk-sqs": ["hyper"], "hyper": [], "reqwest": ["hyper"], "axum": ["hyper"],
            "lambda_runtime": ["hyper"]}


def metadata(workspace=WORKSPACE, registry=REGISTRY, root="/ws"):
    """`cargo metadata --format-version 1` as Cargo writes it, for what check_layers reads."""
    ids = {name: f"path+file://{root}/{place}#{name}@0.1.0" for name, (place, _, _) in workspace.items()}
    ids.update({name: f"registry+https://github.com/rust-lang/crates.io-index#{name}@1.0.0" for name in registry})

    def deps(normal, dev=()):
        return [{"name": d, "pkg": ids[d], "dep_kinds": [{"kind": kind, "target": None}]}
                for kind, names in ((None, normal), ("dev", dev)) for d in names]

    packages = [{"name": name, "id": ids[name], "manifest_path": f"{root}/{place}/Cargo.toml"}
                for name, (place, _, _) in workspace.items()]
    packages += [{"name": name, "id": ids[name], "manifest_path": f"/registry/{name}/Cargo.toml"} for name in registry]
    nodes = [{"id": ids[name], "deps": deps(normal, dev)} for name, (_, normal, dev) in workspace.items()]
    nodes += [{"id": ids[name], "deps": deps(normal)} for name, normal in registry.items()]
    return {"packages": packages, "workspace_members": [ids[name] for name in workspace],
            "workspace_root": root, "resolve": {"nodes": nodes, "root": None}}


def changed(crate, normal=(), dev=(), place=None, registry=None):
    """The workspace with `crate` given more dependencies (or added, at `place`)."""
    workspace = dict(WORKSPACE)
    old_place, old_normal, old_dev = workspace.get(crate, (place, [], []))
    workspace[crate] = (place or old_place, old_normal + list(normal), old_dev + list(dev))
    return metadata(workspace, {**REGISTRY, **(registry or {})})


class CheckLayersTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="check-layers-")
        self.addCleanup(shutil.rmtree, self.dir)

    def check(self, graph):
        path = os.path.join(self.dir, "metadata.json")
        with open(path, "w") as f:
            json.dump(graph, f)
        env = dict(os.environ, CRATE_GRAPH=path, PYTHON=sys.executable)
        return subprocess.run([CHECK], env=env, capture_output=True, text=True, timeout=60)

    def assertBroken(self, graph, *lines):
        run = self.check(graph)
        self.assertEqual(run.returncode, 1, run.stdout + run.stderr)
        for line in lines:
            self.assertIn(line, run.stderr)

    def test_the_graph_as_it_should_be_passes(self):
        run = self.check(metadata())
        self.assertEqual(run.returncode, 0, run.stderr)
        self.assertIn("every arrow points one way (13 crates checked)", run.stdout)

    def test_a_product_crate_depending_on_the_local_platform_fails(self):
        self.assertBroken(changed("wxbridge-core", ["wxbridge-devstack"]),
                          "wxbridge-core depends on wxbridge-devstack, a crate of tools/ or tests/: "
                          "wxbridge-core → wxbridge-devstack")

    def test_through_another_crate_too(self):
        graph = changed("wxbridge-http", ["odd-helper"], registry={"odd-helper": ["wxbridge-devstack"]})
        self.assertBroken(graph, "wxbridge-http depends on wxbridge-devstack, a crate of tools/ or tests/: "
                                 "wxbridge-http → odd-helper → wxbridge-devstack",
                          # and so does everything above it
                          "callback depends on wxbridge-devstack")

    def test_a_function_running_on_the_wechat_fake_fails(self):
        self.assertBroken(changed("media", ["wechat-fake"]),
                          "media depends on wechat-fake, a test kit: media → wechat-fake")

    def test_a_product_crate_testing_on_the_wechat_fake_passes(self):
        # The fake needs no emulator: a unit test may have it as its WeChat.
        run = self.check(changed("wxbridge-http", dev=["wechat-fake"]))
        self.assertEqual(run.returncode, 0, run.stderr)

    def test_a_unit_tested_crate_reaching_the_emulator_fails(self):
        self.assertBroken(changed("wxbridge-core", dev=["wxbridge-testkit-aws"]),
                          "wxbridge-core depends on wxbridge-testkit-aws, the emulator's test kit: "
                          "the unit tier runs without the emulator: wxbridge-core → wxbridge-testkit-aws")

    def test_the_integration_tests_on_the_local_platform_fail(self):
        self.assertBroken(changed("wxbridge-integration", ["wxbridge-devstack"]),
                          "wxbridge-integration depends on wxbridge-devstack, a crate of tools/")
        self.assertBroken(changed("wxbridge-integration", dev=["wxbridge-attack"]),
                          "wxbridge-integration depends on wxbridge-attack, a crate of tools/: "
                          "wxbridge-integration → wxbridge-attack")

    def test_the_wechat_fake_is_the_tests_own(self):
        self.assertBroken(changed("wxbridge-http", ["wechat-fake"]),
                          "wxbridge-http depends on wechat-fake, what its layer must not reach: "
                          "wxbridge-http → wechat-fake")
        self.assertBroken(changed("wxbridge-lambda", ["wechat-fake"]),
                          "wxbridge-lambda depends on wechat-fake, what its layer must not reach",
                          "callback depends on wechat-fake, a test kit: callback → wxbridge-lambda → wechat-fake")

    def test_the_oracle_has_its_own_code(self):
        self.assertBroken(changed("wechat-fake", ["wxbridge-wechat"]),
                          "wechat-fake depends on wxbridge-wechat, another crate of the workspace (an oracle has its own code)")

    def test_a_tool_depending_on_the_tests_fails(self):
        self.assertBroken(changed("wxbridge-attack", dev=["wxbridge-integration"]),
                          "wxbridge-attack depends on wxbridge-integration, a crate of tests/")

    def test_a_layer_above_fails(self):
        self.assertBroken(changed("wxbridge-core", ["wxbridge-aws"]),
                          "wxbridge-core depends on wxbridge-aws, what its layer must not reach")
        self.assertBroken(changed("wxbridge-wechat", ["reqwest"]),
                          "wxbridge-wechat depends on hyper, what its layer must not reach: wxbridge-wechat → reqwest → hyper")
        self.assertBroken(changed("callback", ["wxbridge-testkit"]), "callback depends on wxbridge-testkit, a test kit")

    def test_dev_dependencies_count_for_their_own_crate_only(self):
        # The test kit's own tests on the local platform break its rule; the crates whose
        # tests use the test kit do not get its dev-dependencies, and break none.
        run = self.check(changed("wxbridge-testkit", dev=["wxbridge-devstack"]))
        self.assertEqual(run.returncode, 1, run.stderr)
        self.assertIn("wxbridge-testkit depends on wxbridge-devstack", run.stderr)
        self.assertNotIn("wxbridge-core depends", run.stderr)
        self.assertNotIn("wxbridge-lambda depends", run.stderr)

    def test_a_crate_outside_the_known_places_is_under_no_rule(self):
        self.assertBroken(changed("stray", ["wxbridge-devstack"], place="misc/stray"),
                          "stray (misc/stray) is under no rule")

    def test_the_workspace_itself_with_a_rule_broken(self):
        if shutil.which("cargo") is None:
            self.skipTest("cargo is not installed")
        host = [line.split(": ", 1)[1] for line in subprocess.run(
            ["rustc", "-vV"], capture_output=True, text=True, check=True).stdout.splitlines()
            if line.startswith("host: ")][0]
        real = json.loads(subprocess.run(
            ["cargo", "metadata", "--quiet", "--format-version", "1", "--filter-platform", host],
            cwd=ROOT, capture_output=True, text=True, check=True).stdout)
        self.assertEqual(self.check(real).returncode, 0, "the workspace as it is passes")
        ids = {p["name"]: p["id"] for p in real["packages"] if p["id"] in real["workspace_members"]}
        for node in real["resolve"]["nodes"]:
            if node["id"] == ids["wxbridge-lambda"]:
                node["deps"].append({"name": "wxbridge_devstack", "pkg": ids["wxbridge-devstack"],
                                     "dep_kinds": [{"kind": None, "target": None}]})
        self.assertBroken(real, "wxbridge-lambda depends on wxbridge-devstack",
                          *(f"{function} depends on wxbridge-devstack, a crate of tools/ or tests/: "
                            f"{function} → wxbridge-lambda → wxbridge-devstack"
                            for function in ("api", "callback", "dispatch", "inbound", "lifecycle", "media", "push")))


if __name__ == "__main__":
    unittest.main()
