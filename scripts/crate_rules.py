"""The crate graph's rules, checked by scripts/check_layers.sh: what each crate of the
workspace must never depend on, directly or through other crates. Reads the output of
`cargo metadata --format-version 1` on stdin; prints each broken rule with the path that
breaks it, and exits 1 when one is broken.

Every crate of the workspace is under a rule by where it sits, and one that sits anywhere
else fails the check, so a new crate cannot slip past it:

- the product and its test kits, `shared/*` and `functions/*`: never a crate of `tools/`
  (the local platform) or `tests/`, in its dependencies or its dev-dependencies; nor, but
  for itself, the emulator's test kit `wxbridge-testkit-aws`: their own tests are the unit
  tier, which runs without the emulator;
- `tests/`: never a crate of `tools/`, dev-dependencies included;
- `tools/*`: never `tests/`;
- the WeChat fake (`shared/wechat-fake`), the tests' oracle of WeChat's server API: no
  other crate of the workspace, written from WeChat's documentation on its own.

Inside the product the arrows point one way (docs/architecture.md): protocol ← core ←
{aws, http} ← lambda ← functions, the test kits beside them ([`LAYERS`]).

"Through other crates" follows dependencies and build-dependencies; a crate's own
dev-dependencies count for that crate only, as Cargo builds them for its tests alone.
"""

import json
import re
import sys
from collections import deque
from pathlib import PurePosixPath

# The AWS SDK and the Lambda runtime, by their crates' names (not aws-lc, the TLS crypto).
AWS = r"aws-sdk-|aws-config|aws-smithy-|aws-types|aws-runtime|aws-credential|aws-sigv4|aws_lambda_events"
LAMBDA = r"lambda_|lambda-"
TEST_KITS = r"(wxbridge-testkit(-aws)?|wechat-fake)$"

# crate → what must not appear among its dependencies (a regex on crate names)
LAYERS = {
    "wxbridge-wechat": rf"^({AWS}|{LAMBDA}|reqwest|axum|hyper|tower|wxbridge-|{TEST_KITS})",
    "wxbridge-core": rf"^({AWS}|{LAMBDA}|reqwest|axum|hyper|tower|wxbridge-(aws|http|lambda)$|{TEST_KITS})",
    "wxbridge-aws": rf"^({LAMBDA}|reqwest|axum|wxbridge-(http|lambda)$|{TEST_KITS})",
    "wxbridge-http": rf"^({AWS}|{LAMBDA}|axum|wxbridge-(aws|lambda)$|{TEST_KITS})",
    "wxbridge-testkit": rf"^({AWS}|{LAMBDA}|reqwest|axum|hyper|wxbridge-(aws|http|lambda|testkit-aws)$)",
    "wxbridge-testkit-aws": r"^(reqwest|axum|wxbridge-(http|lambda|testkit)$)",
    "wxbridge-lambda": rf"^{TEST_KITS}",
}
# What no function (functions/*) may depend on.
FUNCTION = rf"^{TEST_KITS}"

# Test support on the local AWS emulator: the integration tier's; no other crate of the
# product may reach it, even in its tests (they are the unit tier's).
EMULATOR_KIT = "wxbridge-testkit-aws"

# Test oracles: they depend on no other crate of the workspace.
ORACLES = {"wechat-fake"}


def graph(metadata):
    """Names by package id, where each workspace crate sits, and each package's edges as
    (kind, dependency id) with kind "normal", "build" or "dev"."""
    names = {p["id"]: p["name"] for p in metadata["packages"]}
    root = PurePosixPath(metadata["workspace_root"])
    places = {}
    for package in metadata["packages"]:
        if package["id"] in metadata["workspace_members"]:
            manifest = PurePosixPath(package["manifest_path"])
            places[package["id"]] = manifest.parent.relative_to(root).parts
    edges = {}
    for node in metadata["resolve"]["nodes"]:
        edges[node["id"]] = [
            (kind["kind"] or "normal", dep["pkg"])
            for dep in node["deps"]
            for kind in dep["dep_kinds"]
        ]
    return names, places, edges


def reach(start, edges, with_dev):
    """Every package `start` depends on, each with the path to it from `start`."""
    paths = {}
    queue = deque()
    for kind, dep in edges.get(start, []):
        if (kind != "dev" or with_dev) and dep not in paths:
            paths[dep] = [dep]
            queue.append(dep)
    while queue:
        package = queue.popleft()
        for kind, dep in edges.get(package, []):
            if kind != "dev" and dep not in paths and dep != start:
                paths[dep] = paths[package] + [dep]
                queue.append(dep)
    return paths


def rules(crate, place, tools, tests, workspace):
    """The rules over `crate`: (what it names, with dev-dependencies?, is it forbidden?),
    or None when no rule covers where it sits."""
    found = []
    kind = place[0] if place else ""
    if kind in ("shared", "functions") and len(place) == 2:
        found.append(("a crate of tools/ or tests/", True, lambda n: n in tools or n in tests))
        if crate != EMULATOR_KIT:
            found.append(("the emulator's test kit: the unit tier runs without the emulator", True,
                          lambda n: n == EMULATOR_KIT))
        if crate in LAYERS:
            found.append(("what its layer must not reach", False, re.compile(LAYERS[crate]).search))
        if kind == "functions":
            found.append(("a test kit", False, re.compile(FUNCTION).search))
        if crate in ORACLES:
            found.append(("another crate of the workspace (an oracle has its own code)", True,
                          lambda n: n in workspace and n != crate))
    elif place == ("tests",):
        found.append(("a crate of tools/", True, lambda n: n in tools))
    elif kind == "tools" and len(place) == 2:
        found.append(("a crate of tests/", True, lambda n: n in tests))
    return found or None


def check(metadata):
    """The broken rules, one line each."""
    names, places, edges = graph(metadata)
    tools = {names[i] for i, place in places.items() if place[:1] == ("tools",)}
    tests = {names[i] for i, place in places.items() if place == ("tests",)}
    workspace = {names[i] for i in places}
    broken = []
    for package, place in sorted(places.items(), key=lambda item: names[item[0]]):
        crate = names[package]
        crate_rules = rules(crate, place, tools, tests, workspace)
        if crate_rules is None:
            broken.append(f"{crate} ({'/'.join(place) or '.'}) is under no rule: "
                          "a crate sits in shared/, functions/, tools/ or tests/")
            continue
        named = set()
        for what, with_dev, forbidden in crate_rules:
            paths = reach(package, edges, with_dev)
            for dep, path in sorted(paths.items(), key=lambda item: names[item[0]]):
                if forbidden(names[dep]) and dep not in named:
                    named.add(dep)
                    chain = " → ".join([crate] + [names[p] for p in path])
                    broken.append(f"{crate} depends on {names[dep]}, {what}: {chain}")
    return broken, len(places)


def main():
    broken, crates = check(json.load(sys.stdin))
    for line in broken:
        print(f"crate graph: {line}", file=sys.stderr)
    if broken:
        return 1
    print(f"crate graph: every arrow points one way ({crates} crates checked)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
