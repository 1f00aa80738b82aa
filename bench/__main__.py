"""``make bench``: run the benchmarks (``--full`` allocates 1M accounts instead of 100k)."""

from __future__ import annotations

import argparse
import asyncio

from bench import ledger


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--full", action="store_true", help="1M accounts instead of 100k")
    parser.add_argument("--accounts", type=int, default=None, help="accounts to allocate")
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of load phases")
    args = parser.parse_args()
    accounts = args.accounts or (1_000_000 if args.full else 100_000)
    asyncio.run(ledger.run(accounts=accounts, seconds=args.seconds))


if __name__ == "__main__":
    main()
