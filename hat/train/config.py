"""Training configuration: one task YAML (``configs/tasks/*.yaml``) -> :class:`TrainConfig`.

Relative paths inside a task YAML are resolved against the project root (:func:`hat.resources.project_root`), so the
shipped configs work from any working directory; paths given on the command line are resolved against the cwd.
"""

from __future__ import annotations

import dataclasses
import os
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

import yaml

from hat.config import check_type, from_dict, load_yaml, safe_load_yaml_text, to_dict
from hat.errors import ConfigError

LR_SCHEDULERS = ("inverse_sqrt", "cosine")
SAMPLING_MODES = ("random", "sandwich")  # = hat.train.supernet_update.SAMPLING_MODES (kept import-light here)
AMP_MODES = ("none", "bf16", "fp16")
LOG_FORMATS = ("jsonl", "tensorboard")
DEVICES = ("auto", "cpu", "cuda")

# Fields holding file-system paths (resolved against the project root / cwd, see module docstring).
PATH_FIELDS = ("data", "raw_dir", "save_dir", "subnet", "init_from_supernet")


@dataclass
class TrainConfig:
    """Everything ``hat-train`` needs; every field can be overridden with ``--set key=value``."""

    # Binarized fairseq-layout directory (dict.<lang>.txt, <split>.<src>-<tgt>.<lang>.bin/.idx).
    data: str
    src_lang: str
    tgt_lang: str
    # Search space name (configs/spaces/<name>.yaml) or path. Also fixes qkv_dim for a static subnet.
    space: str
    task: str = ""
    # Raw parallel text (<prefix>.<lang>[.gz]); when set and `data` has no dictionary yet, hat.data.preprocess
    # builds `data` from it (joint sentencepiece BPE) before training.
    raw_dir: Optional[str] = None
    # File prefixes inside `raw_dir` of the train / valid / test splits (Multi30k: train, val, test_2016_flickr).
    raw_trainpref: str = "train"
    raw_validpref: str = "valid"
    raw_testpref: Optional[str] = None
    # Joint BPE vocabulary size for the preprocessing step above.
    bpe_vocab_size: int = 8000
    train_subset: str = "train"
    valid_subset: str = "valid"
    # hat.nn.ModelConfig fields other than the vocab sizes / pad / eos, which come from the dictionaries.
    model: dict[str, Any] = field(default_factory=dict)
    # SuperTransformer only: SubTransformers trained per update. "random": one sampled (HAT); "sandwich": the largest,
    # the smallest and `sandwich_random` sampled ones, gradients summed (hat.train.supernet_update).
    subnet_sampling: str = "random"
    sandwich_random: int = 2
    # Sandwich only: weight w of in-place distillation (BigNAS: 1). Every non-largest SubTransformer of an update
    # minimizes (1 - w) * label-smoothed CE + w * CE to the largest's detached output distribution. 0 = off.
    inplace_distill: float = 0.0
    # Train one fixed SubTransformer (subnet YAML) as a static Transformer instead of the SuperTransformer.
    subnet: Optional[str] = None
    # With `subnet`: start from this SuperTransformer checkpoint's inherited (sliced) weights.
    init_from_supernet: Optional[str] = None
    # Max source or target tokens (incl. padding) per batch and per worker, fairseq's --max-tokens.
    max_tokens: int = 4096
    # Gradient accumulation: batches per optimizer update (effective batch = max_tokens * update_freq * world size).
    update_freq: int = 1
    # Stop after this many updates / epochs (0 = no limit; at least one must be set).
    max_update: int = 0
    max_epoch: int = 0
    # Peak learning rate (reached after warmup). HAT's cosine config calls this --max-lr.
    lr: float = 5e-4
    # Cosine only: floor the learning rate anneals to (HAT's cosine configs pass it as --lr 1e-7).
    min_lr: float = 0.0
    lr_scheduler: str = "inverse_sqrt"
    warmup_updates: int = 4000
    # Linear warmup starts here (fairseq's --warmup-init-lr).
    warmup_init_lr: float = 1e-7
    # Cosine only: length of the cosine period in updates after warmup (-1 = max_update - warmup_updates).
    lr_period_updates: int = -1
    adam_betas: list[float] = field(default_factory=lambda: [0.9, 0.98])
    adam_eps: float = 1e-8
    weight_decay: float = 0.0
    # Max global gradient L2 norm (0 = no clipping).
    clip_norm: float = 0.0
    label_smoothing: float = 0.1
    # Mixed precision: bf16 (CPU or CUDA autocast) or fp16 (CUDA only, dynamic loss scaling).
    amp: str = "none"
    device: str = "auto"
    seed: int = 1
    save_dir: str = "runs/train"
    # Save checkpoint<epoch>.pt every this many epochs (0 = only checkpoint_last/best at epoch ends).
    save_interval: int = 1
    # Also save checkpoint_<epoch>_<update>.pt every this many updates (0 = off).
    save_interval_updates: int = 0
    # Keep only the newest N checkpoint_<epoch>_<update>.pt / checkpoint<epoch>.pt files (-1 = keep all).
    keep_last: int = 5
    keep_last_epochs: int = -1
    log_format: str = "jsonl"
    # Training scalars are logged (averaged) every this many updates.
    log_interval: int = 10
    # Validate every this many epochs (and always at the end of training).
    validate_interval: int = 1
    # Validate on at most this many batches (0 = the whole valid set); search fitness uses its own setting.
    valid_subset_max_batches: int = 0
    # DataLoader worker processes that collate batches (0 = collate in the training process).
    num_workers: int = 0
    # torch intra-op threads (0 = torch's default).
    threads: int = 0

    def __post_init__(self):
        if self.lr_scheduler not in LR_SCHEDULERS:
            raise ConfigError(f"lr_scheduler must be one of {', '.join(LR_SCHEDULERS)}, got '{self.lr_scheduler}'")
        if self.amp not in AMP_MODES:
            raise ConfigError(f"amp must be one of {', '.join(AMP_MODES)}, got '{self.amp}'")
        if self.log_format not in LOG_FORMATS:
            raise ConfigError(f"log_format must be one of {', '.join(LOG_FORMATS)}, got '{self.log_format}'")
        if self.device not in DEVICES:
            raise ConfigError(f"device must be one of {', '.join(DEVICES)}, got '{self.device}'")
        for name in ("max_tokens", "update_freq", "log_interval", "validate_interval"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("max_update", "max_epoch", "warmup_updates", "save_interval", "save_interval_updates",
                     "valid_subset_max_batches", "num_workers", "threads", "bpe_vocab_size"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.max_update == 0 and self.max_epoch == 0:
            raise ConfigError("set max_update or max_epoch (both are 0: training would never stop)")
        if self.lr <= 0:
            raise ConfigError(f"lr must be positive, got {self.lr}")
        if len(self.adam_betas) != 2 or not all(0 <= b < 1 for b in self.adam_betas):
            raise ConfigError(f"adam_betas must be two numbers in [0, 1), got {self.adam_betas}")
        if not 0 <= self.label_smoothing < 1:
            raise ConfigError(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")
        if self.subnet_sampling not in SAMPLING_MODES:
            raise ConfigError(f"subnet_sampling must be one of {', '.join(SAMPLING_MODES)}, "
                              f"got '{self.subnet_sampling}'")
        if self.sandwich_random < 0:
            raise ConfigError(f"sandwich_random must be >= 0, got {self.sandwich_random}")
        if not 0 <= self.inplace_distill <= 1:
            raise ConfigError(f"inplace_distill must be in [0, 1], got {self.inplace_distill}")
        if self.inplace_distill > 0 and self.subnet_sampling != "sandwich":
            raise ConfigError("inplace_distill needs subnet_sampling: sandwich (the largest SubTransformer of each "
                              "update is the teacher)")
        if self.subnet and (self.subnet_sampling != "random" or self.inplace_distill > 0):
            raise ConfigError("subnet_sampling sandwich / inplace_distill train a SuperTransformer; a fixed subnet "
                              "has nothing to sample")
        if self.init_from_supernet and not self.subnet:
            raise ConfigError("init_from_supernet needs subnet (the SubTransformer to extract)")
        if self.lr_scheduler == "cosine" and self.lr_period_updates < 0 and self.max_update <= self.warmup_updates:
            raise ConfigError("cosine schedule needs max_update > warmup_updates (or lr_period_updates)")

    def to_dict(self) -> dict:
        return to_dict(self)


def _resolve(value: Optional[str], base: Path) -> Optional[str]:
    if value is None or value == "":
        return value
    p = Path(os.path.expanduser(value))
    return str(p if p.is_absolute() else (base / p).resolve())


def parse_override(text: str) -> tuple[str, Any]:
    """Split ``key=value``; the value is parsed as YAML (``--set lr=1e-3``, ``--set adam_betas=[0.9,0.98]``)."""
    if "=" not in text:
        raise ConfigError(f"--set expects key=value, got '{text}'")
    key, raw = text.split("=", 1)
    key = key.strip().replace("-", "_")
    try:
        value = safe_load_yaml_text(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key, value


def apply_overrides(data: dict, overrides: Sequence[str], cwd: Optional[Path] = None) -> dict:
    """Merge ``--set key=value`` overrides into a raw config mapping (``model.dropout=0.2`` sets a model field).

    Values are typed through :class:`TrainConfig` annotations: ``--set lr=1`` becomes ``1.0``; a string given for a
    string field stays a string even when YAML would read it as a number (``--set task=123``).
    """
    cwd = Path.cwd() if cwd is None else cwd
    hints = typing.get_type_hints(TrainConfig)
    out = dict(data)
    for text in overrides:
        key, value = parse_override(text)
        if key.startswith("model."):
            model = dict(out.get("model") or {})
            model[key[len("model."):]] = value
            out["model"] = model
            continue
        if key not in hints:
            allowed = ", ".join(f.name for f in dataclasses.fields(TrainConfig))
            raise ConfigError(f"--set {key}: unknown key; allowed: {allowed}")
        tp = hints[key]
        if tp is str or tp == Optional[str]:
            value = None if (tp != str and value is None) else text.split("=", 1)[1]
        out[key] = check_type(value, tp, f"--set {key}")
        if key in PATH_FIELDS and out[key]:
            out[key] = _resolve(out[key], cwd)
    return out


def load_train_config(path: str | os.PathLike, overrides: Sequence[str] = (), **flags: Any) -> TrainConfig:
    """Read a task YAML, apply ``--set`` overrides and explicit flags (None = not given), validate.

    Args:
        path: task YAML, or a task name under ``configs/tasks``.
        overrides: ``key=value`` strings (see :func:`apply_overrides`).
        **flags: field values from dedicated CLI flags (``save_dir=...``); path fields are resolved against the cwd.

    Raises:
        ConfigError: missing file, malformed YAML, unknown keys or bad values.
    """
    from hat.resources import project_root, resolve_config

    path = resolve_config("tasks", path)
    data = load_yaml(path)
    root = project_root()
    for k in PATH_FIELDS:
        if isinstance(data.get(k), str):
            data[k] = _resolve(data[k], root)
    data = apply_overrides(data, overrides)
    for k, v in flags.items():
        if v is None:
            continue
        if k in PATH_FIELDS and isinstance(v, str):
            v = _resolve(v, Path.cwd())
        data[k] = v
    return from_dict(TrainConfig, data, str(path))
