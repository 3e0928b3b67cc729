"""An onnxruntime session on the CPU, as every model of ours runs: a fixed number of threads,
so that models beside whisper and each other on a few cores do not oversubscribe them, and
only errors logged."""

from pathlib import Path

import onnxruntime

ERRORS_ONLY = 3  # onnxruntime's log severity: 0 verbose … 3 error, 4 fatal


def cpu_session(model: Path | bytes, threads: int = 1) -> onnxruntime.InferenceSession:
    """A session of the model (a file, or a serialized graph) on `threads` threads."""
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = ERRORS_ONLY
    source = model if isinstance(model, bytes) else str(model)
    return onnxruntime.InferenceSession(
        source, sess_options=options, providers=["CPUExecutionProvider"]
    )
