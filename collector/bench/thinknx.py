"""Thinknx poll-cycle benchmark: ``python -m collector.bench.thinknx`` (also run by
``python -m collector.bench``).

One poll cycle of the Thinknx source against the simulator with 200 objects, every answer
delayed by 50 ms (the simulator's latency fault), with ``max_concurrency = 8``. The
sequential sum is what the same requests cost one after the other: requests answered x
latency, a lower bound that leaves out every other cost, so the ratio is conservative. With
concurrency 8 the ratio cannot exceed 8; the target is at least 6.

Prints ``thinknx_cycle_s: X`` and ``thinknx_cycle_vs_sequential: Y``.
"""

from __future__ import annotations

import argparse
import asyncio
import time

from collector.simulators.thinknx import ThinknxSimulator


def bench_thinknx_cycle(
    objects: int = 200, latency_s: float = 0.05, concurrency: int = 8, cycles: int = 2
) -> dict[str, float]:
    """The best of ``cycles`` poll cycles; figures keyed as printed."""
    from collector.config import ThinknxConfig
    from collector.sources.thinknx.source import ThinknxSource

    with ThinknxSimulator(count=objects) as sim:
        config = ThinknxConfig.model_validate(
            sim.config_dict(name="bench", auth="digest") | {"max_concurrency": concurrency}
        )

        async def run() -> tuple[float, int, int]:
            best, requests, readings = float("inf"), 0, 0
            async with ThinknxSource(config) as source:
                sim.faults.latency_s = 0.0
                await source.poll()  # connections and the digest challenge, not measured
                sim.faults.latency_s = latency_s
                for _ in range(cycles):
                    before = sum(sim.served.values())
                    t0 = time.perf_counter()
                    got = await source.poll()
                    elapsed = time.perf_counter() - t0
                    if elapsed < best:
                        best = elapsed
                        requests = sum(sim.served.values()) - before
                        readings = len(got)
            return best, requests, readings

        cycle_s, requests, readings = asyncio.run(run())
    sequential_s = requests * latency_s
    return {
        "thinknx_objects": float(objects),
        "thinknx_latency_ms": latency_s * 1000,
        "thinknx_concurrency": float(concurrency),
        "thinknx_cycle_s": cycle_s,
        "thinknx_cycle_vs_sequential": sequential_s / cycle_s,
        "thinknx_cycle_requests": float(requests),
        "thinknx_cycle_readings": float(readings),
        "thinknx_sequential_s": sequential_s,
    }


def report(results: dict[str, float]) -> None:
    print(f"Thinknx poll cycle, {results['thinknx_objects']:.0f} objects, "
          f"{results['thinknx_latency_ms']:.0f} ms per answer, concurrency "
          f"{results['thinknx_concurrency']:.0f}: "
          f"{results['thinknx_cycle_requests']:.0f} requests, "
          f"{results['thinknx_cycle_readings']:.0f} readings in "
          f"{results['thinknx_cycle_s']:.2f} s (sequential sum "
          f"{results['thinknx_sequential_s']:.2f} s)")


def run(objects: int = 200, latency_s: float = 0.05, concurrency: int = 8) -> dict[str, float]:
    """Measure, print the figures and return them (``collector.bench`` calls this)."""
    results = bench_thinknx_cycle(objects, latency_s, concurrency)
    report(results)
    for key in ("thinknx_cycle_s", "thinknx_cycle_vs_sequential"):
        print(f"{key}: {results[key]:.2f}")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--objects", type=int, default=200)
    parser.add_argument("--latency", type=float, default=0.05, help="seconds per answer")
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    run(args.objects, args.latency, args.concurrency)


if __name__ == "__main__":
    main()
