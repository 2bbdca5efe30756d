"""Benchmarking: runner adapters and output parsers (``runners``), the host ONNX runner
(``ort_runner``), latency statistics (``stats``) and the profile session (``session``)."""
