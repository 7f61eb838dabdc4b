"""ONNX Runtime graph calls at the cost of the graph, not of onnxruntime's Python wrapper.

hat's decoder step keeps its caches inside ONNX Runtime (``OrtValue`` in, ``OrtValue`` out), one
``run_with_ort_values`` call per step. The public wrapper builds its result list by *iterating* the returned
``OrtValueVector``, which costs far more than the graph call itself on small models: measured on this machine
(onnxruntime 1.32, a 4-output Identity graph, 1 thread) 150-250 us per call against 15-25 us for the same call
whose result is *indexed* instead; ``OrtValue.ortvalue_from_numpy`` adds ~10-30 us per input through its Python
device lookup. At 30 steps per sentence that is several milliseconds per decode, most of the time hat spent
outside its graphs (``docs/benchmarks.md``). :class:`OrtCalls` uses the session's ``run_with_ortvaluevector`` (public,
"minimal C++/Python conversion overhead"), whose values are onnxruntime's C-level ``OrtValue`` objects, and indexes
its result; where this onnxruntime lacks those it uses ``run_with_ort_values`` (same values, same order).
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np


def _c_module():
    """onnxruntime's C-level module where it has what :class:`OrtCalls` uses (else None: the public API then)."""
    from onnxruntime.capi import _pybind_state as c_module
    ok = hasattr(c_module, "OrtValueVector") and hasattr(c_module, "OrtDevice") and \
        callable(getattr(getattr(c_module, "OrtValue", None), "ortvalue_from_numpy", None))
    return c_module if ok else None


class OrtCalls:
    """Values and runs of one ``onnxruntime.InferenceSession``.

    Args:
        session: the session.
        fast: the C-level path (None: where this onnxruntime has it; False: the public API, e.g. to compare).

    A value made by :meth:`value` reads the numpy array's memory without holding it: the caller keeps the array
    alive as long as the value is fed (as hat's decoding state does). Values from :meth:`run` own their memory.
    Both kinds have ``.numpy()``; the two paths' values do not mix.
    """

    def __init__(self, session, fast: Optional[bool] = None):
        import onnxruntime as ort
        self.session, self.run_options, self._c, self._device = session, ort.RunOptions(), None, None
        if fast is not False and callable(getattr(session, "run_with_ortvaluevector", None)):
            c = _c_module()
            try:
                self._device = c.OrtDevice(c.OrtDevice.cpu(), c.OrtDevice.default_memory(), 0) if c else None
                self._c = c
            except (TypeError, AttributeError):  # another onnxruntime's constructor: the public path
                pass
        self.fast = self._c is not None

    def value(self, array: np.ndarray):
        """An ONNX Runtime value over ``array`` (C-contiguous; not copied)."""
        if self._c is None:
            import onnxruntime as ort
            return ort.OrtValue.ortvalue_from_numpy(array)
        return self._c.OrtValue.ortvalue_from_numpy(array, self._device)

    def run(self, output_names: Sequence[str], feeds: dict) -> list:
        """Run the graph on values (from :meth:`value` or an earlier :meth:`run`); its outputs, in order."""
        if self._c is None:
            return self.session.run_with_ort_values(list(output_names), feeds)
        inputs, outputs = self._c.OrtValueVector(), self._c.OrtValueVector()
        for v in feeds.values():
            inputs.push_back(v)
        self.session.run_with_ortvaluevector(self.run_options, list(feeds), inputs, list(output_names), outputs,
                                             [self._device] * len(output_names))
        return [outputs[i] for i in range(len(outputs))]  # indexed: iterating the vector is the slow part
