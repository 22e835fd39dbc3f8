"""A small, real CPU workload for the README's first command: a parent that
starts worker processes (as a data loader would) which count primes, then
sorts a few million numbers itself. Stdlib only; about 5 seconds on 2 cores.

    wattmeter run -- python3 examples/demo.py
"""

import multiprocessing as mp
import random
import sys
import time


def count_primes(limit: int) -> int:
    sieve = bytearray([1]) * (limit + 1)
    sieve[0:2] = b"\x00\x00"
    for i in range(2, int(limit ** 0.5) + 1):
        if sieve[i]:
            sieve[i * i :: i] = bytes(len(range(i * i, limit + 1, i)))
    return sum(sieve)


def worker(seconds: float) -> int:
    end = time.monotonic() + seconds
    n = 0
    while time.monotonic() < end:
        n += count_primes(200_000)
    return n


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 4.0
    with mp.get_context("fork").Pool(2) as pool:
        results = pool.map(worker, [seconds, seconds])
    data = [random.random() for _ in range(2_000_000)]
    data.sort()
    print(f"demo: counted {sum(results)} primes in 2 workers, sorted {len(data)} numbers")


if __name__ == "__main__":
    main()
