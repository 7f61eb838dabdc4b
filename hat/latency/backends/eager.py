"""PyTorch eager backend: a static ``hat.nn.Transformer`` with random weights, timed in-process."""

from __future__ import annotations

from hat.errors import HatError
from hat.latency.backends.base import Backend, Measurement, Prepared, clock_ns
from hat.latency.protocol import ProfileSettings, host_info
from hat.space import SubnetConfig


def build_static_model(subnet: SubnetConfig, settings: ProfileSettings, qkv_dim: int):
    """The static Transformer of ``subnet`` with seeded random weights (latency does not depend on the values),
    vocabulary ``settings.vocab_size`` (shared embeddings), dropout off, eval mode."""
    import torch

    from hat.nn import ModelConfig, Transformer
    cfg = ModelConfig(src_vocab_size=settings.vocab_size, tgt_vocab_size=settings.vocab_size, dropout=0.0)
    # Seed a forked RNG: random init must not consume or reset the caller's global torch RNG.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(settings.seed)
        model = Transformer(subnet, cfg, qkv_dim)
    return model.eval()


class EagerLoop:
    """HAT's encoder pass and incremental decoder loop on a static Transformer, as two callables.

    ``encode()`` returns the cross K/V of every decoder layer for the seeded source sentence; ``decode(cross)``
    repeats them per beam row and runs ``tgt_len`` cached decoder steps, returning the last logits.
    """

    def __init__(self, model, subnet: SubnetConfig, settings: ProfileSettings, qkv_dim: int, device: str = "cpu"):
        import torch
        self.model = model.to(device)
        self.subnet, self.settings, self.qkv_dim = subnet, settings, qkv_dim
        self.src = torch.tensor(settings.source_tokens(), dtype=torch.long, device=device)
        self.src_lengths = torch.full((self.src.shape[0],), self.src.shape[1], dtype=torch.long, device=device)
        self.tgt = [torch.tensor(t, dtype=torch.long, device=device).view(-1, 1) for t in settings.target_tokens()]
        self.steps = [torch.tensor(i, dtype=torch.long, device=device) for i in range(settings.tgt_len)]
        self.device = device

    def encode(self):
        enc = self.model.encoder(self.src, self.src_lengths)
        return self.model.decoder.cross_kv(enc)

    def decode(self, cross):
        import torch
        beam = self.settings.beam
        cross = [tuple(x.repeat_interleave(beam, dim=0) for x in kv) for kv in cross]
        rows = self.src.shape[0] * beam
        self_k, self_v = [], []
        for h in self.subnet.decoder_self_attention_heads:
            empty = torch.zeros(rows, h, 0, self.qkv_dim // h, device=self.device)
            self_k.append(empty)
            self_v.append(empty)
        logits = None
        for tok, step in zip(self.tgt, self.steps):
            logits, self_k, self_v = self.model.decoder.step(tok, step, cross, self_k, self_v)
        return logits


class EagerPrepared(Prepared):
    """One static model: a run is one encoder pass and the decoder loop, timed by ``timer`` (CUDA: events)."""

    def __init__(self, loop: EagerLoop, cuda: bool, timer: str):
        self.loop, self.cuda, self.clock = loop, cuda, clock_ns(timer)

    def run_once(self) -> tuple[float, float]:
        import torch
        loop = self.loop
        with torch.inference_mode():
            if self.cuda:
                e0, e1, e2 = (torch.cuda.Event(enable_timing=True) for _ in range(3))
                torch.cuda.synchronize()
                e0.record()
                cross = loop.encode()
                e1.record()
                loop.decode(cross)
                e2.record()
                torch.cuda.synchronize()
                return e0.elapsed_time(e1), e1.elapsed_time(e2)
            t0 = self.clock()
            cross = loop.encode()
            t1 = self.clock()
            loop.decode(cross)
            t2 = self.clock()
        return (t1 - t0) / 1e6, (t2 - t1) / 1e6

    def close(self) -> None:
        self.loop = None


class EagerBackend(Backend):
    """PyTorch eager on CPU (``perf_counter_ns`` or ``thread_time_ns``) or CUDA (events + synchronize); threads
    pinned while a chunk is measured."""

    name = "eager"
    timers = ("wall", "thread_cpu")
    accelerators = ("cpu", "cuda")

    def _cuda(self) -> bool:
        import torch
        cuda = self.device.accelerator == "cuda"
        if cuda and not torch.cuda.is_available():
            raise HatError(f"device {self.device.name}: accelerator cuda requested but torch sees no CUDA GPU")
        return cuda

    def prepare(self, subnet: SubnetConfig) -> EagerPrepared:
        cuda = self._cuda()
        s = self.settings
        loop = EagerLoop(build_static_model(subnet, s, self.qkv_dim), subnet, s, self.qkv_dim,
                         "cuda" if cuda else "cpu")
        return EagerPrepared(loop, cuda, s.timer)

    def runtime_info(self) -> tuple[str, str]:
        import torch
        version = f"torch {torch.__version__}" + (f"; {torch.cuda.get_device_name()}" if self._cuda() else "")
        return host_info(version), version

    def measure_chunk(self, subnets: list[SubnetConfig]) -> list[Measurement]:
        import torch
        self._cuda()
        prev_threads = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        try:
            return super().measure_chunk(subnets)
        finally:
            torch.set_num_threads(prev_threads)
