"""What every model call runs under: inference mode, bfloat16 autocast when the model runs in
it, and on the CPU ATen's native RNN kernels instead of oneDNN's (:func:`running`)."""

from __future__ import annotations

import contextlib
import threading

import torch


class _NativeCpuRnnKernels:
    """While entered, CPU RNN layers use ATen's native kernels instead of oneDNN's (mkldnn).

    Decoding calls the recurrent layer once per target token, with one time step. oneDNN's RNN
    primitive has a fixed cost per call (it reorders the weights each time): about 2 ms on a
    2-core CPU, which makes it 2-4x slower than the native kernel at serving batch sizes (1-40
    rows) and no faster at 320 rows (docs/benchmarks.md). The switch is process-wide in torch,
    so entries are counted under a lock: the first one in turns oneDNN off, the last one out
    restores the previous setting, and concurrent translations never leave it changed. The
    encoder runs over packed sequences, which take the native kernel either way.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users = 0
        self._saved = True

    def __enter__(self) -> None:
        with self._lock:
            if self._users == 0:
                # torch.backends.mkldnn.enabled wraps these two (typed as a descriptor)
                self._saved = torch._C._get_mkldnn_enabled()
                torch._C._set_mkldnn_enabled(False)
            self._users += 1

    def __exit__(self, *exc_info: object) -> None:
        with self._lock:
            self._users -= 1
            if self._users == 0:
                torch._C._set_mkldnn_enabled(self._saved)


_native_cpu_rnn_kernels = _NativeCpuRnnKernels()


def running(device: torch.device, bf16: bool) -> contextlib.ExitStack:
    """Inference mode, bfloat16 autocast when ``bf16``, and in float32 or int8 on a CPU the
    native RNN kernels. bfloat16 on a CPU keeps oneDNN: its matrix products are oneDNN's
    (ATen's own bfloat16 kernels are several times slower), and the decoder's recurrent step
    then comes from the token table (:mod:`model.runtime.lstm_table`) when the shortlist is
    on, so no per-step oneDNN RNN call is made."""
    stack = contextlib.ExitStack()
    stack.enter_context(torch.inference_mode())
    if bf16:
        stack.enter_context(torch.autocast(device_type=device.type, dtype=torch.bfloat16))
    if device.type == "cpu" and not bf16:
        stack.enter_context(_native_cpu_rnn_kernels)
    return stack
