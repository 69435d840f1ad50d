# The two commands of the README, and the benchmark.
.PHONY: dev test bench coldstart demo attack load

## Run the bridge locally on the local AWS emulator.
dev:
	@scripts/dev.sh

## Run every check and test (what CI runs).
test:
	@scripts/test.sh

## Measure verify + decrypt + parse against the wechatpy baseline.
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

## Order per user under load through the whole local stack (20 users x 10 texts, backed off together).
load:
	@scripts/load_order.sh
