"""Reports built from the results database.

- :mod:`~mobilebench.report.table2`: the paper's Table 2 (top-1 vs latency per phone),
  with a provenance sidecar naming the run behind every cell.
- :mod:`~mobilebench.report.plot`: accuracy vs latency/FLOPs/params with the Pareto front.
- :mod:`~mobilebench.report.regress`: latency regression verdicts against a committed
  baseline (``results/baselines/*.csv``).
- :mod:`~mobilebench.report.formats`: table/CSV/JSON/Markdown rendering shared by the
  commands; atomic writes come from :mod:`mobilebench.files`.
"""
