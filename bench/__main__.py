"""``make bench``: run the benchmarks (``--full`` allocates 1M accounts instead of 100k)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os

from bench import catalogue, consumers, kafka, ledger, reads


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--full", action="store_true", help="1M accounts instead of 100k")
    parser.add_argument("--accounts", type=int, default=None, help="accounts to allocate")
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of load phases")
    phases = ["ledger", "allocation", "verify", "reads", "catalogue", "consumers", "kafka"]
    parser.add_argument(
        "--only", choices=phases, default=None, help="allocation, verify: that phase alone"
    )
    parser.add_argument("--events", type=int, default=20_000, help="events per consumer phase")
    parser.add_argument(
        "--kafka-profile",
        action="store_true",
        help="kafka: py-spy samples of each service into bench-results/kafka-*.folded",
    )
    parser.add_argument(
        "--payments-replicas",
        type=int,
        default=1,
        help="kafka: payments processes in one consumer group (the others run one each)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=min(2, os.cpu_count() or 1),
        help="ledger, reads: the all-in-one server's processes (ila run --workers)",
    )
    args = parser.parse_args()
    accounts = args.accounts or (1_000_000 if args.full else 100_000)
    if args.only in (None, "ledger"):
        asyncio.run(ledger.run(accounts=accounts, seconds=args.seconds, workers=args.workers))
    if args.only == "allocation":
        asyncio.run(ledger.run_allocation_only(accounts=accounts))
    if args.only == "verify":
        asyncio.run(ledger.run_verify_only(accounts=accounts))
    if args.only in (None, "reads"):
        reads.print_table(asyncio.run(reads.run(seconds=args.seconds, workers=args.workers)))
    if args.only in (None, "catalogue"):
        found = asyncio.run(catalogue.run())
        catalogue.print_table(found)
        ledger.OUT.mkdir(exist_ok=True)
        (ledger.OUT / "catalogue.json").write_text(json.dumps(found, indent=2) + "\n")
        print(f"\nwritten to {ledger.OUT / 'catalogue.json'}")
    if args.only in (None, "consumers"):
        asyncio.run(consumers.run(events=args.events))
    if args.only in (None, "kafka"):
        figures = kafka.run(args.seconds, args.kafka_profile, args.payments_replicas)
        kafka.print_table(asyncio.run(figures))


if __name__ == "__main__":
    main()
