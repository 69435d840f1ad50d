# The two commands of the README (dev, test), the three test tiers test runs, and the runs
# docs/testing.md and docs/operations.md describe.
.PHONY: dev test test-unit test-integ test-e2e bench coldstart demo attack load load-backoff faults api-fuzz fuzz

## Run the bridge locally on the local AWS emulator.
dev:
	@scripts/dev.sh

## Run every check and all three test tiers (what CI runs).
test:
	@scripts/test.sh

## The product's unit tests: the protocol, the core on memory adapters, the handlers called
## in process, the WeChat fake's rules. No emulator, no local stack; about 16 s once built.
test-unit:
	@scripts/test.sh unit

## The integration tests: the adapters and handlers on the local AWS emulator (moto) with
## the WeChat fake, and the SQS event source mapping's own tests.
test-integ:
	@scripts/test.sh integ

## The local stack: its tools' own tests, then the demo, the attack run, a small load run,
## the partner API's property tests and the quick fault scenarios.
test-e2e:
	@scripts/test.sh e2e

## Measure verify + decrypt + parse against its floor and the wechatpy baseline, and count its instructions.
bench:
	@scripts/bench.sh

## Cold starts, memory and sizes of every function beside a hello-world Lambda.
coldstart:
	@scripts/coldstart.sh

## A scripted conversation through the whole local stack (run by `make test` too).
demo:
	@scripts/demo.sh

## An adversarial run through the whole local stack, with its figures.
attack:
	@scripts/attack.sh

## Users x texts through the whole local stack on release builds, the partner answering each:
## delivered once and in order, latencies, billed time, AWS requests (USERS=4 MESSAGES=40).
load:
	@STACK_PROFILE=$${STACK_PROFILE:-release} scripts/load.sh

## Order per user when every user's texts are backed off together (20 users x 10 texts).
load-backoff:
	@scripts/load_backoff.sh

## Failures injected through the whole local stack (the partner down, WeChat failing or
## slow, the store slow and throttled, functions killed mid-batch, WeChat repeating pushes):
## every text and reply delivered once, in order per user. FAULTS=quick: the part in make test.
faults:
	@scripts/faults.sh

## Property tests of the partner API from api/openapi.json (schemathesis), every request
## signed, through the whole local stack: no 5xx, every answer as documented.
api-fuzz:
	@scripts/schemathesis.sh

## The fuzz targets (fuzz/: opening pushes, the XML reader, the API signature check, the
## configuration reader), FUZZ_SECS (60) each.
fuzz:
	@scripts/fuzz.sh
