"""``hat-profile``: measure SubTransformer latency on a device (local CPU/GPU or a remote board over SSH).

Dataset mode (HAT's latency dataset for a predictor)::

    hat-profile --space multi30k_tiny --device cpu --samples 300 --out lat.csv [--resume] [--seed 1] [--widen]

One SubTransformer::

    hat-profile --config subnet.yaml --device cpu [--space multi30k_tiny]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from typing import Optional, Sequence

from hat.errors import cli_main
from hat.errors import ConfigError, HatError

PROG = "hat-profile"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description="Measure SubTransformer latency (HAT's protocol: batch 1, "
                                "30 source tokens, 30 decoder steps with beam 5, trimmed mean of timed runs).")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--samples", type=int, help="sample and measure this many SubTransformers (needs --space, "
                      "--out)")
    what.add_argument("--config", help="measure the SubTransformer in this YAML and print its latency")
    p.add_argument("--space", help="search space name or YAML (sampling; membership check and qkv_dim)")
    p.add_argument("--device", required=True, help="device name (configs/devices/<name>.yaml) or YAML path")
    p.add_argument("--out", help="latency CSV to append to (dataset mode)")
    p.add_argument("--resume", action="store_true", help="skip configs already in --out")
    p.add_argument("--seed", type=int, default=1, help="sampling seed (default 1; the protocol's token seed is fixed)")
    p.add_argument("--widen", action="store_true", help="sample from the slightly widened space (as HAT does)")
    p.add_argument("--trust-on-first-use", action="store_true",
                   help="ssh devices: accept and save an unknown host key (default: refuse)")
    g = p.add_argument_group("measurement protocol (defaults: HAT's)")
    defaults = _settings_defaults()
    for name, help_ in (("src_len", "source tokens"), ("tgt_len", "decoder steps"), ("beam", "decoder rows"),
                        ("vocab_size", "vocabulary of the random-init model"), ("warmup", "untimed runs"),
                        ("repeats", "timed runs"), ("threads", "intra-op threads (default: the device's)")):
        default = None if name == "threads" else defaults[name]
        g.add_argument("--" + name.replace("_", "-"), type=int, default=default,
                       help=f"{help_}" + (f" (default {default})" if default is not None else ""))
    from hat.latency.protocol import ESTIMATORS, TIMERS
    g.add_argument("--timer", choices=TIMERS, help="wall, or thread_cpu (CPU time of the measuring thread: time "
                   "descheduled by other jobs is not counted; needs 1 thread, CPU) (default: the device's, else "
                   f"{defaults['timer']})")
    g.add_argument("--estimator", choices=ESTIMATORS, default=None,
                   help="statistic of the timed runs written to the latency columns (default: the device YAML's "
                        f"estimator, else {defaults['estimator']})")
    g.add_argument("--interleave", type=int, default=None,
                   help=f"configs measured together in rounds (default: the device YAML's interleave, else "
                        f"{defaults['interleave']})")
    g.add_argument("--drift-every", type=int, default=defaults["drift_every"],
                   help=f"re-measure a reference config every N configs and warn if it moved > 5%% (0: off; "
                   f"default {defaults['drift_every']})")
    return p


def _settings_defaults() -> dict:
    from hat.latency.protocol import ProfileSettings
    return dataclasses.asdict(ProfileSettings())


@cli_main(PROG)
def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    from hat.latency.devices import load_device
    from hat.latency.protocol import ProfileSettings
    from hat.space import SubnetConfig, load_space

    device = load_device(args.device)
    if args.threads is not None:
        if args.threads < 1:
            raise HatError(f"--threads must be >= 1, got {args.threads}")
        device.threads = args.threads
        if device.timer == "thread_cpu" and args.threads != 1 and args.timer is None:
            device.timer = "wall"  # the device's thread_cpu default needs 1 thread; an explicit --timer is checked
    if args.timer is not None:
        device.timer = args.timer
    if args.estimator is not None:
        device.estimator = args.estimator
    if args.interleave is not None:
        device.interleave = args.interleave
    settings = ProfileSettings(src_len=args.src_len, tgt_len=args.tgt_len, beam=args.beam,
                               vocab_size=args.vocab_size, warmup=args.warmup, repeats=args.repeats,
                               threads=device.threads, estimator=device.estimator or _settings_defaults()["estimator"],
                               interleave=device.interleave or _settings_defaults()["interleave"],
                               drift_every=args.drift_every)
    if args.config is not None:
        from hat.config import load_yaml
        meta = load_yaml(args.config)
        subnet = SubnetConfig.load_yaml(args.config)
        space_name = args.space or (meta.get("space") if isinstance(meta.get("space"), str) else None)
        if space_name is None:
            raise ConfigError(f"{args.config}: no 'space' key in the file; pass --space (it sets qkv_dim)")
        space = load_space(space_name)
        space.check(subnet, f"{args.config}")
        return _profile_one(subnet, space, device, settings, args)
    if args.space is None or args.out is None:
        raise HatError("--samples needs --space and --out")
    space = load_space(args.space)
    from hat.latency.profiler import profile_dataset
    configs, records = profile_dataset(space, device, settings, args.samples, args.out, seed=args.seed,
                                       widen=args.widen, resume=args.resume,
                                       trust_on_first_use=args.trust_on_first_use, on_warning=_warn)
    skipped = len(configs) - len(records)
    print(f"measured {len(records)} SubTransformers on {device.name} ({device.runtime})"
          + (f", {skipped} already in {args.out}" if skipped else "") + f" -> {args.out}")
    return 0


def _warn(msg: str) -> None:
    print(f"{PROG}: warning: {msg}", file=sys.stderr, flush=True)


def _profile_one(subnet, space, device, settings, args) -> int:
    from hat.latency.backends import get_backend
    from hat.latency.flops import subnet_macs
    from hat.latency.profiler import profile
    from hat.nn import count_subnet_params
    with get_backend(device, settings, space.qkv_dim, trust_on_first_use=args.trust_on_first_use) as backend:
        rec = profile([subnet], backend, on_warning=_warn)[0]
    macs = subnet_macs(subnet, space.qkv_dim, settings.src_len, settings.tgt_len, settings.vocab_size,
                       rows=settings.batch_size * settings.beam)
    macs_hat = subnet_macs(subnet, space.qkv_dim, settings.src_len, settings.tgt_len)
    print(f"device: {device.name} ({device.runtime}, {rec.threads} thread(s), timer {rec.timer}, "
          f"{rec.estimator}); {rec.host}")
    print(f"latency_encoder_ms: {rec.latency_mean_encoder:.3f} (std {rec.latency_std_encoder:.3f})")
    print(f"latency_decoder_ms: {rec.latency_mean_decoder:.3f} (std {rec.latency_std_decoder:.3f})")
    print(f"latency_total_ms: {rec.latency_ms:.3f}")
    print(f"params: {count_subnet_params(subnet, space.qkv_dim)} (without embeddings, as HAT)")
    print(f"flops: {macs_hat.flops / 1e9:.4f} G per sentence (beam 1, no output projection, as HAT); "
          f"{macs.flops / 1e9:.4f} G as measured (beam {settings.beam}, vocab {settings.vocab_size})")
    return 0
