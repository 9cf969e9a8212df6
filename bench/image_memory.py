"""Benchmark: peak memory of preparing a large image for Bluesky (fit_image).

A ~49 megapixel JPEG and PNG (just under HERALD_MAX_IMAGE_PIXELS, noisy so neither fits
Bluesky's 1,000,000-byte limit as it is) are written to a temporary folder; each is then shrunk
by `fit_image` in a fresh process, which prints its peak resident memory (ru_maxrss) next to
what the process held before the call (Python, Django and the file's bytes).

    python bench/image_memory.py [--side 7000]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _write_inputs(side: int, folder: Path) -> list[Path]:
    from PIL import Image

    noise = Image.effect_noise((side, side), 40).convert("RGB")
    paths = []
    for fmt, options in (("JPEG", {"quality": 92}), ("PNG", {"compress_level": 1})):
        path = folder / f"input.{fmt.lower()}"
        noise.save(path, fmt, **options)
        paths.append(path)
    return paths


def _run(path: str, queue: multiprocessing.Queue) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.test_settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()
    from scheduler.networks.bluesky.images import fit_image

    data = Path(path).read_bytes()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    result = fit_image(data, max_bytes=1_000_000)
    elapsed = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    queue.put((len(data), before // 1024, peak // 1024, elapsed, (result.width, result.height)))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--side", type=int, default=7000)
    args = parser.parse_args()
    context = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory() as folder:
        for path in _write_inputs(args.side, Path(folder)):
            queue = context.Queue()
            process = context.Process(target=_run, args=(str(path), queue))
            process.start()
            size, before, peak, elapsed, result = queue.get(timeout=300)
            process.join()
            print(
                f"{path.suffix[1:].upper():4} {args.side}x{args.side} ({size / 1e6:.1f} MB): "
                f"peak RSS {peak} MB ({peak - before} MB above the {before} MB before), "
                f"{elapsed:.2f} s, result {result[0]}x{result[1]}"
            )


if __name__ == "__main__":
    main()
