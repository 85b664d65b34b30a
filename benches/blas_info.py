"""Which BLAS this Python process has loaded, and which kernel and threads it uses.

threadpoolctl answers when it is installed; otherwise the OpenBLAS entry points
(openblas_get_corename, openblas_get_num_threads, openblas_get_config) are asked
directly through ctypes, on every BLAS library mapped into the process.
"""

import ctypes


def mapped_blas_libraries():
    """Paths of the shared libraries mapped into this process whose name mentions BLAS."""
    with open("/proc/self/maps") as maps:
        paths = {line.split()[-1] for line in maps if ".so" in line}
    return sorted(path for path in paths if "blas" in path.lower())


def openblas_details(path):
    library = ctypes.CDLL(path)
    details = {"path": path}
    for name in ("openblas_get_corename", "openblas_get_config"):
        if hasattr(library, name):
            getattr(library, name).restype = ctypes.c_char_p
            details[name.removeprefix("openblas_get_")] = getattr(library, name)().decode()
    if hasattr(library, "openblas_get_num_threads"):
        details["threads"] = library.openblas_get_num_threads()
    return details


def blas_report():
    try:
        from threadpoolctl import threadpool_info

        return {"threadpoolctl": threadpool_info()}
    except ImportError:
        return {"libraries": [openblas_details(path) for path in mapped_blas_libraries()]}
