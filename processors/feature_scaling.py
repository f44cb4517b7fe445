"""Feature scaling the way a coffea user writes it: a fileset, a Runner, a Parsl executor.

    python processors/feature_scaling.py CFG INPUT_DIR OUTPUT_DIR [--workers 2] [--chunksize N]
                                         [--log-step N]

Equivalent to ``taucoffea scaling compute --cfg CFG --input INPUT_DIR --output OUTPUT_DIR``
(same JSON files, byte for byte, at the same chunk size); kept as a plain script to show that
ScalingProcessor works in any coffea Runner. INPUT_DIR holds per-tau parquet files such as
``ShuffleMergeSpectral_<k>.parquet``.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import parsl
from coffea import processor
from coffea.nanoevents import BaseSchema
from parsl.config import Config
from parsl.executors import HighThroughputExecutor
from parsl.providers import LocalProvider

from taucoffea.processors.scaling import ScalingProcessor
from taucoffea.scaling.config import load_feature_config
from taucoffea.stages.scaling import natural_key, result_from_accumulator, write_scaling_outputs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("cfg")
    parser.add_argument("input")
    parser.add_argument("output")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--chunksize", type=int, default=100_000)
    parser.add_argument("--log-step", type=int, default=None)
    args = parser.parse_args()

    config = load_feature_config(args.cfg)
    files = sorted((str(p.resolve()) for p in Path(args.input).rglob("*.parquet")), key=natural_key)
    config_parsl = Config(
        executors=[
            HighThroughputExecutor(
                address="127.0.0.1",
                max_workers_per_node=args.workers,
                provider=LocalProvider(init_blocks=1, max_blocks=1),
            )
        ],
        run_dir=tempfile.mkdtemp(prefix="parsl-"),
        strategy="none",
    )
    with parsl.load(config_parsl):
        runner = processor.Runner(
            executor=processor.ParslExecutor(status=False),
            schema=BaseSchema,
            chunksize=args.chunksize,
            format="parquet",
        )
        out = runner({"scaling": files}, processor_instance=ScalingProcessor(config), treename="")
    parsl.clear()

    result = result_from_accumulator(out, config, files, log_step=args.log_step)
    write_scaling_outputs(result, args.output, overwrite=True)
    print(result.summary())


if __name__ == "__main__":
    main()
