#!/usr/bin/python3
"""Classify a FASTA file with argserve from Python and print a TSV.

    PYTHONPATH=build/python:client/python /usr/bin/python3 client/python/example.py \
        --target 127.0.0.1:50051 examples/proteins.fasta
"""

import argparse
import sys

from argserve_client import ArgServeClient, read_fasta


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("fasta")
    parser.add_argument("--target", default="127.0.0.1:50051")
    args = parser.parse_args()
    with ArgServeClient(args.target) as client:
        if not client.healthy():
            print(f"argserve at {args.target} is not serving", file=sys.stderr)
            return 4
        print("id\tpredicted_class\tprobability")
        for p in client.classify(read_fasta(args.fasta)):
            print(f"{p.id}\t{p.predicted_class}\t{p.probability:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
