"""The machine's float32 GEMM peak, for `npm run bench`'s "% of sgemm peak".

    python3 benches/sgemm_peak.py '<case JSON>' <result file>

A square n×n×n sgemm (n = 2048 by default) through numpy, whose BLAS on Debian is
libblas.so.3 → OpenBLAS (the report names the library, kernel and threads actually
used); torch.mm when numpy is missing. FLOPs = 2n³.
"""

import json
import sys

from blas_info import blas_report
from pytorch_lstm import peak_rss_mib, time_repetitions


def numpy_sgemm(n):
    import numpy

    generator = numpy.random.default_rng(0)
    a = generator.random((n, n), dtype=numpy.float32)
    b = generator.random((n, n), dtype=numpy.float32)
    return f"numpy {numpy.__version__} a @ b", lambda: a @ b


def torch_sgemm(n):
    import os

    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    a, b = torch.rand(n, n), torch.rand(n, n)
    return f"torch {torch.__version__} torch.mm", lambda: torch.mm(a, b)


def run_case(spec):
    n = spec.get("n", 2048)
    try:
        api, multiply = numpy_sgemm(n)
    except ImportError:
        api, multiply = torch_sgemm(n)
    times, warmup, _, _ = time_repetitions(multiply, spec["policy"])
    return {
        "info": {"api": api, "n": n, "blas": blas_report()},
        "timesMs": times,
        "warmup": warmup,
        "flops": 2 * n**3,
        "peakRssMiB": peak_rss_mib(),
    }


def main():
    spec, result_file = json.loads(sys.argv[1]), sys.argv[2]
    try:
        result = run_case(spec)
    except ImportError as error:
        result = {"skipped": f"neither numpy nor torch can be imported ({error})"}
    except Exception as error:  # reported in the record, the run goes on
        result = {"error": f"{type(error).__name__}: {error}"}
    with open(result_file, "w") as out:
        json.dump(result, out)


if __name__ == "__main__":
    main()
