"""Latency measurement (owner: latency). Kept import-light: submodules are imported where used.

* :mod:`hat.latency.records`: the latency CSV (HAT's columns + provenance), ``CsvAppender``, ``read_latency_csv``;
* :mod:`hat.latency.protocol`: ``ProfileSettings`` (HAT's timing protocol + timer, estimator, interleave,
  drift check), ``check_timer``, ``summarize``, host info;
* :mod:`hat.latency.devices`: ``DeviceConfig`` / ``load_device`` (``configs/devices/*.yaml``);
* :mod:`hat.latency.runtimes`: the runtime registry; :mod:`hat.latency.backends`: ``get_backend(device, settings, qkv_dim)``
  (eager, onnxruntime, ctranslate2, tvm, debug; where they run: :mod:`hat.transport`);
* :mod:`hat.latency.profiler`: ``profile(configs, backend, out=...)`` (interleaved chunks, drift and load
  warnings), ``sample_configs``;
* :mod:`hat.latency.load`: ``LoadMonitor`` (load average, other busy processes);
* :mod:`hat.latency.flops`: analytic MACs / FLOPs of a SubnetConfig;
* :mod:`hat.latency.deployed`: latency as shipped: a trained model exported for each runtime and weight type that
  runs it, ms/sentence translating real text (interleaved), HAT-protocol latency in interleaved rounds.

To add a runtime, see docs/design.md, "How to extend".
"""
