"""SuperTransformer / SubTransformer training loop (HAT Sec. 3.2: weight-shared training, one random SubTransformer
per update, or the sandwich rule with in-place distillation: :mod:`hat.train.supernet_update`), with gradient
accumulation, AMP, multi-process data parallelism and exactly resumable checkpoints.

Reproducibility: the SubTransformer(s) of update ``n`` come from ``random.Random(stable_seed(seed, n))`` and the torch
generator (dropout) is re-seeded from ``(seed, n, rank)`` before every update, so a run resumed from any checkpoint
(model, Adam state, update count and position in the epoch's batch list are saved) computes exactly what the
uninterrupted run computes, independent of when it was interrupted.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Optional

import torch

from hat.distributed import init_distributed, local_device
from hat.errors import ConfigError, HatError
from hat.train import checkpoint as ckpt_io
from hat.train.config import TrainConfig
from hat.train.evaluate import prepare_batches, valid_sums
from hat.train.lr import build_schedule
from hat.train.supernet_update import accumulate_gradients, stable_seed, subnet_rng, update_subnets

__all__ = ["JsonlLogger", "TensorBoardLogger", "TrainResult", "Trainer", "ensure_data",
           "stable_seed", "subnet_rng", "train"]


# ----- logging -----
class JsonlLogger:
    """Append-only JSONL log, one record per line, flushed and fsync'd per record (survives SIGKILL)."""

    def __init__(self, path: Path, resume_update: Optional[int]):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        if resume_update is None:
            path.write_text("")
        elif path.exists():
            # Drop records the killed run wrote after its last checkpoint: the resumed run redoes those updates.
            keep = []
            for line in path.read_text().splitlines():
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    continue  # torn last line from a crash
                if rec.get("update", 0) <= resume_update:
                    keep.append(line)
            from hat.io import atomic_write
            atomic_write(path, "".join(line + "\n" for line in keep))
        self.f = open(path, "a")

    def log(self, record: dict) -> None:
        self.f.write(json.dumps(record) + "\n")
        self.f.flush()
        os.fsync(self.f.fileno())

    def close(self) -> None:
        self.f.close()


class TensorBoardLogger:
    """Scalars to TensorBoard (``torch.utils.tensorboard``, imported only when this format is chosen)."""

    def __init__(self, log_dir: Path):
        from hat.optional import require
        self.w = require("torch.utils.tensorboard", "log_format tensorboard", pip="tensorboard").SummaryWriter(
            str(log_dir))

    def log(self, record: dict) -> None:
        kind, step = record.get("type", "train"), record.get("update", 0)
        for k, v in record.items():
            if isinstance(v, (int, float)) and not isinstance(v, bool) and k not in ("update",):
                self.w.add_scalar(f"{kind}/{k}", v, step)
        self.w.flush()

    def close(self) -> None:
        self.w.close()


@dataclass
class TrainResult:
    """What :meth:`Trainer.train` returns."""

    update: int
    epoch: int
    # Validation loss (label-smoothed, nats/token) at the end; the largest SubTransformer for a SuperTransformer.
    valid_loss: Optional[float]
    valid_nll_loss: Optional[float]
    best_valid_loss: Optional[float]
    save_dir: str


def _resolve_device(name: str) -> torch.device:
    if name == "cuda" or (name == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise HatError("device cuda requested but CUDA is not available")
        return local_device(True)
    return torch.device("cpu")


def ensure_data(cfg: TrainConfig) -> None:
    """Binarize ``cfg.raw_dir`` into ``cfg.data`` with joint BPE unless ``cfg.data`` already has a dictionary.

    Raises:
        HatError: ``cfg.data`` missing and no (existing) ``raw_dir`` to build it from.
    """
    data = Path(cfg.data)
    if (data / f"dict.{cfg.src_lang}.txt").is_file():
        return
    if not cfg.raw_dir:
        raise HatError(f"data directory {data} has no dict.{cfg.src_lang}.txt (run hat-preprocess, or set raw_dir)")
    if not Path(cfg.raw_dir).is_dir():
        raise HatError(f"data directory {data} is missing and raw_dir {cfg.raw_dir} does not exist "
                       f"(pass --data DIR or --raw-dir DIR)")
    from hat.data.preprocess import PreprocessSettings, preprocess
    raw = Path(cfg.raw_dir)
    preprocess(PreprocessSettings(
        src=cfg.src_lang, tgt=cfg.tgt_lang, trainpref=str(raw / cfg.raw_trainpref), destdir=str(data),
        validpref=str(raw / cfg.raw_validpref), testpref=str(raw / cfg.raw_testpref) if cfg.raw_testpref else None,
        bpe="sentencepiece", bpe_vocab=cfg.bpe_vocab_size, joined_dictionary=True, seed=cfg.seed,
        threads=max(1, cfg.threads)))


class Trainer:
    """Trains a SuperTransformer (a random SubTransformer each update) or one fixed SubTransformer.

    Example:
        >>> cfg = load_train_config("multi30k_de_en", ["max_update=100"])
        >>> result = Trainer(cfg).train()

    Args:
        cfg: the task config.
        resume: continue from ``<save_dir>/checkpoint_last.pt`` (a fresh start if there is none).
        progress: show a tqdm bar (rank 0 only).
    """

    def __init__(self, cfg: TrainConfig, resume: bool = False, progress: bool = True):
        from hat.config import from_dict
        from hat.data import load_split
        from hat.nn import ModelConfig, SuperTransformer, Transformer
        from hat.space import SubnetConfig, load_space

        self.cfg = cfg
        self.progress = progress
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        self.device = _resolve_device(cfg.device)
        if cfg.amp == "fp16" and self.device.type != "cuda":
            raise ConfigError("amp fp16 needs CUDA (use amp: bf16 on CPU)")
        self.dist = init_distributed(self.device)
        self.save_dir = Path(cfg.save_dir)

        # Data: rank 0 binarizes if needed, the others wait.
        if self.dist.is_main:
            ensure_data(cfg)
        self._barrier()
        if not Path(cfg.data).is_dir():
            raise HatError(f"data directory {cfg.data} does not exist")
        self.train_data = load_split(cfg.data, cfg.train_subset, cfg.src_lang, cfg.tgt_lang)
        self.valid_data = load_split(cfg.data, cfg.valid_subset, cfg.src_lang, cfg.tgt_lang)
        src_dict, tgt_dict = self.train_data.src_dict, self.train_data.tgt_dict

        # Model.
        self.space = load_space(cfg.space)
        model_kw = dict(cfg.model)
        for k in ("src_vocab_size", "tgt_vocab_size", "padding_idx", "eos_idx"):
            if k in model_kw:
                raise ConfigError(f"model.{k} comes from the dictionaries; remove it from the config")
        model_kw.update(src_vocab_size=len(src_dict), tgt_vocab_size=len(tgt_dict), padding_idx=tgt_dict.pad(),
                        eos_idx=tgt_dict.eos())
        self.model_cfg = from_dict(ModelConfig, model_kw, "model")
        self.padding_idx = self.model_cfg.padding_idx
        torch.manual_seed(cfg.seed)  # identical initial weights on every rank and every run
        self.subnet: Optional[SubnetConfig] = None
        if cfg.subnet:
            self.subnet = SubnetConfig.load_yaml(cfg.subnet)
            self.space.check(self.subnet, f"subnet {cfg.subnet}")
            self.model = Transformer(self.subnet, self.model_cfg, self.space.qkv_dim)
            if cfg.init_from_supernet:
                self._init_from_supernet(cfg.init_from_supernet)
        else:
            self.model = SuperTransformer(self.space, self.model_cfg)
        self.model.to(self.device)
        self.params = [p for p in self.model.parameters() if p.requires_grad]

        self.optimizer = torch.optim.Adam(self.params, lr=cfg.warmup_init_lr if cfg.warmup_init_lr >= 0 else 0.0,
                                          betas=tuple(cfg.adam_betas), eps=cfg.adam_eps,
                                          weight_decay=cfg.weight_decay)
        self.schedule = build_schedule(cfg)
        self.amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(cfg.amp)
        self.scaler = torch.amp.GradScaler("cuda") if cfg.amp == "fp16" else None

        # Progress state (restored by resume).
        self.num_updates = 0
        self.epoch = 1          # epoch to continue in
        self.position = 0       # batches of that epoch already consumed (this rank's shard)
        self.best_valid_loss: Optional[float] = None
        resumed = self._maybe_resume() if resume else False
        if not resume and self.dist.is_main and (self.save_dir / "checkpoint_last.pt").exists():
            raise HatError(f"{self.save_dir} already holds a training run (checkpoint_last.pt); pass --resume to "
                           f"continue it or choose another --save-dir")

        self.logger = None
        if self.dist.is_main:
            self.save_dir.mkdir(parents=True, exist_ok=True)
            if cfg.log_format == "tensorboard":
                self.logger = TensorBoardLogger(self.save_dir / "tensorboard")
            else:
                self.logger = JsonlLogger(self.save_dir / "train_log.jsonl",
                                          self.num_updates if resumed else None)
        self._valid_batches: Optional[list[dict]] = None

    # ----- setup helpers -----
    def _barrier(self) -> None:
        if self.dist.enabled:
            import torch.distributed as dist
            dist.barrier()

    def _init_from_supernet(self, path: str) -> None:
        sup, ck = ckpt_io.load_model(path)
        if ck.get("subnet") is not None or not hasattr(sup, "get_active_subnet"):
            raise HatError(f"{path}: init_from_supernet needs a SuperTransformer checkpoint")
        sup.space.check(self.subnet, f"subnet {self.cfg.subnet} (supernet {path})")
        if sup.space.qkv_dim != self.space.qkv_dim:
            raise HatError(f"{path}: supernet qkv_dim {sup.space.qkv_dim} differs from space {self.space.name}'s "
                           f"{self.space.qkv_dim}")
        if sup.cfg.hat_compat:  # HAT's SuperTransformer: keep computing with HAT's semantics (hat.nn.ModelConfig)
            self.model_cfg = dataclasses.replace(self.model_cfg, **{
                k: getattr(sup.cfg, k) for k in ("hat_compat", "hat_super_encoder_embed_dim",
                                                 "hat_super_decoder_embed_dim", "hat_super_encoder_layer_num")})
            self.model = type(self.model)(self.subnet, self.model_cfg, self.space.qkv_dim)
        sd = sup.get_active_subnet(self.subnet).state_dict()
        mine = self.model.state_dict()
        bad = [k for k in mine if k not in sd or sd[k].shape != mine[k].shape]
        if bad:
            raise HatError(f"{path}: supernet weights do not fit this model (vocabulary differs?): {bad[0]}")
        self.model.load_state_dict(sd)

    def _maybe_resume(self) -> bool:
        path = self.save_dir / "checkpoint_last.pt"
        if not path.exists():
            if self.dist.is_main:
                print(f"hat-train: no {path}; starting from scratch", file=sys.stderr)
            return False
        path, ck = ckpt_io.load_resume_checkpoint(
            self.save_dir, warn=lambda m: print(f"hat-train: {m}", file=sys.stderr) if self.dist.is_main else None)
        want_subnet = self.subnet.to_dict() if self.subnet is not None else None
        if ck.get("subnet") != want_subnet:
            raise HatError(f"{path} was trained with subnet {ck.get('subnet')}, this config trains {want_subnet}")
        if ck.get("space") != self.space.to_dict():
            raise HatError(f"{path} was trained on another search space than {self.space.name}")
        # The batch list (hence the saved position in it) depends on these; resuming with others would skip or
        # repeat data silently.
        old_cfg = ck.get("train_config") or {}
        for k in ("max_tokens", "update_freq", "seed", "train_subset", "subnet_sampling", "sandwich_random",
                  "inplace_distill"):
            if k in old_cfg and old_cfg[k] != getattr(self.cfg, k):
                raise HatError(f"{path}: {k} was {old_cfg[k]}, now {getattr(self.cfg, k)}; resume needs the same "
                               f"value (or start a new run in another --save-dir)")
        old_world = (ck.get("iterator") or {}).get("world_size", self.dist.world_size)
        if old_world != self.dist.world_size:
            raise HatError(f"{path}: trained with {old_world} processes, now {self.dist.world_size}; resume needs the "
                           f"same number (data shards differ)")
        self.model.load_state_dict(ck["model"])
        self.optimizer.load_state_dict(ck["optimizer"])
        if self.scaler is not None and ck.get("scaler"):
            self.scaler.load_state_dict(ck["scaler"])
        self.num_updates = int(ck["update"])
        it = ck.get("iterator") or {"epoch": int(ck["epoch"]), "position": 0}
        self.epoch, self.position = int(it["epoch"]), int(it["position"])
        self.best_valid_loss = ck.get("best_valid_loss")
        if "rng" in ck:
            ckpt_io.set_rng_state(ck["rng"])
        return True

    # ----- data -----
    def epoch_batches(self, epoch: int) -> list[list[int]]:
        """This rank's batches (lists of dataset indices) of ``epoch``, in training order (deterministic)."""
        from hat.data import batch_by_tokens
        batches = [list(map(int, b)) for b in batch_by_tokens(
            self.train_data, self.cfg.max_tokens, seed=self.cfg.seed, epoch=epoch, shuffle=True,
            num_shards=self.dist.world_size, shard_id=self.dist.rank)]
        if self.dist.enabled:
            # Every rank must run the same number of updates (collectives), so cut to the shortest shard.
            import torch.distributed as dist
            n = torch.tensor([len(batches)], dtype=torch.long, device=self._comm_device)
            dist.all_reduce(n, op=dist.ReduceOp.MIN)
            batches = batches[: int(n)]
        return batches

    @property
    def _comm_device(self) -> torch.device:
        return self.device if self.device.type == "cuda" else torch.device("cpu")

    def _collate_iter(self, batches: list[list[int]]) -> Iterator[dict]:
        if self.cfg.num_workers > 0:
            loader = torch.utils.data.DataLoader(_BatchList(self.train_data, batches), batch_size=None,
                                                 num_workers=self.cfg.num_workers,
                                                 pin_memory=self.device.type == "cuda")
            yield from loader
        else:
            for idx in batches:
                yield self.train_data.batch(idx)

    # ----- one update -----
    def subnets_for(self, update: int) -> list[tuple[str, Any]]:
        """The ``(role, SubnetConfig)`` pairs trained at ``update`` (``[("fixed", None)]`` for a static model)."""
        if self.subnet is not None:
            return [("fixed", None)]
        return update_subnets(self.space, self.cfg.seed, update, self.cfg.subnet_sampling, self.cfg.sandwich_random)

    def active_subnet_for(self, update: int):
        """The (first) SubTransformer trained at ``update`` (None when training a fixed static model)."""
        return self.subnets_for(update)[0][1]

    def train_step(self, samples: list[dict]) -> dict:
        """One optimizer update over ``samples`` (``update_freq`` collated batches); returns its statistics."""
        update = self.num_updates
        subnets = self.subnets_for(update)
        torch.manual_seed(stable_seed("dropout", self.cfg.seed, update, self.dist.rank))
        self.model.train()
        lr = self.schedule(update)
        for g in self.optimizer.param_groups:
            g["lr"] = lr
        self.optimizer.zero_grad(set_to_none=True)

        # loss, nll (averaged over the update's SubTransformers), ntokens, nsentences, distill
        stats = accumulate_gradients(self.model, samples, subnets, label_smoothing=self.cfg.label_smoothing,
                                     padding_idx=self.padding_idx, device=self.device,
                                     inplace_distill=self.cfg.inplace_distill, amp_dtype=self.amp_dtype,
                                     scaler=self.scaler)

        grads = [p.grad for p in self.params if p.grad is not None]
        if self.dist.enabled:
            self._all_reduce(grads, stats)
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)
        # fairseq normalization: gradient of the summed loss divided by the total target tokens of the update.
        ntokens = float(stats[2])
        if ntokens > 0:
            torch._foreach_mul_(grads, 1.0 / ntokens)
        max_norm = self.cfg.clip_norm if self.cfg.clip_norm > 0 else math.inf
        params_with_grad = [p for p in self.params if p.grad is not None]
        gnorm = float(torch.nn.utils.clip_grad_norm_(params_with_grad, max_norm))
        overflow = not math.isfinite(gnorm)
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        elif not overflow:
            self.optimizer.step()
        self.num_updates += 1
        return {"loss": float(stats[0]), "nll_loss": float(stats[1]), "ntokens": ntokens,
                "nsentences": float(stats[3]), "gnorm": gnorm, "lr": lr, "overflow": overflow,
                "distill_loss": float(stats[4])}

    def _all_reduce(self, grads: list[torch.Tensor], stats: torch.Tensor) -> None:
        """Sum gradients and statistics over ranks. All ranks trained the same SubTransformers (same seeded
        samples), so the same parameters have gradients everywhere: one flat buffer, one collective."""
        import torch.distributed as dist
        from torch._utils import _flatten_dense_tensors, _unflatten_dense_tensors
        if grads:
            flat = _flatten_dense_tensors(grads)
            dist.all_reduce(flat)
            for g, r in zip(grads, _unflatten_dense_tensors(flat, grads)):
                g.copy_(r)
        dist.all_reduce(stats)

    # ----- validation -----
    def validate(self) -> dict:
        """Validation loss / NLL per target token (nats). A SuperTransformer is scored with its largest and smallest
        SubTransformers (``loss`` = largest, as HAT); shards are scored per rank and summed."""
        if self._valid_batches is None:
            self._valid_batches = prepare_batches(self.valid_data, self.cfg.max_tokens,
                                                  self.cfg.valid_subset_max_batches, self.device,
                                                  self.dist.world_size, self.dist.rank)
        targets = [("", None)] if self.subnet is not None else \
            [("", self.space.largest()), ("smallest_", self.space.smallest())]
        out = {}
        for prefix, sub in targets:
            if sub is not None:
                self.model.set_active_subnet(sub)
            loss, nll, ntok = valid_sums(self.model, self._valid_batches, self.cfg.label_smoothing,
                                         self.padding_idx, self.amp_dtype)
            t = torch.tensor([loss, nll, float(ntok)], dtype=torch.float64, device=self._comm_device)
            if self.dist.enabled:
                import torch.distributed as dist
                dist.all_reduce(t)
            n = max(float(t[2]), 1.0)
            out[f"{prefix}loss"] = float(t[0]) / n
            out[f"{prefix}nll_loss"] = float(t[1]) / n
        out["ntokens"] = float(t[2])
        return out

    # ----- checkpoints -----
    def state_dict(self, epoch: int, end_of_epoch: bool) -> dict:
        """The checkpoint dict (see :mod:`hat.train.checkpoint`)."""
        nxt = {"epoch": epoch + 1, "position": 0} if end_of_epoch else {"epoch": epoch, "position": self.position}
        nxt["world_size"] = self.dist.world_size
        return {
            "model": self.model.state_dict(),
            "space": self.space.to_dict(),
            "model_config": dataclasses.asdict(self.model_cfg),
            "subnet": self.subnet.to_dict() if self.subnet is not None else None,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.schedule.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "update": self.num_updates,
            "epoch": epoch,
            "iterator": nxt,
            "best_valid_loss": self.best_valid_loss,
            "rng": ckpt_io.get_rng_state(),
            "train_config": self.cfg.to_dict(),
            "version": ckpt_io.CHECKPOINT_VERSION,
        }

    def save(self, epoch: int, end_of_epoch: bool, is_best: bool = False) -> None:
        """Rank 0 writes ``checkpoint<epoch>.pt`` (epoch end) or ``checkpoint_<epoch>_<update>.pt`` (update interval),
        then copies it to ``checkpoint_last.pt`` (and ``checkpoint_best.pt``); old ones pruned per keep_last*."""
        if not self.dist.is_main:
            return
        cfg = self.cfg
        state = self.state_dict(epoch, end_of_epoch)
        names = []
        if end_of_epoch and cfg.save_interval and epoch % cfg.save_interval == 0:
            names.append(f"checkpoint{epoch}.pt")
        if not end_of_epoch and cfg.save_interval_updates and self.num_updates % cfg.save_interval_updates == 0:
            names.append(f"checkpoint_{epoch}_{self.num_updates}.pt")
        if is_best:
            names.append("checkpoint_best.pt")
        names.append("checkpoint_last.pt")
        first = self.save_dir / names[0]
        ckpt_io.save_checkpoint(state, first)
        for n in names[1:]:
            ckpt_io.copy_checkpoint(first, self.save_dir / n)
        ckpt_io.prune_checkpoints(self.save_dir, cfg.keep_last, cfg.keep_last_epochs)

    # ----- main loop -----
    def _log(self, record: dict) -> None:
        if self.logger is not None:
            self.logger.log(record)

    def _done(self) -> bool:
        cfg = self.cfg
        return bool((cfg.max_update and self.num_updates >= cfg.max_update)
                    or (cfg.max_epoch and self.epoch > cfg.max_epoch))

    def _end_validation(self, epoch: int) -> dict:
        v = self.validate()
        is_best = self.best_valid_loss is None or v["loss"] < self.best_valid_loss
        if is_best:
            self.best_valid_loss = v["loss"]
        self._log({"type": "valid", "update": self.num_updates, "epoch": epoch, **v,
                   "best_loss": self.best_valid_loss})
        return {**v, "is_best": is_best}

    def train(self) -> TrainResult:
        """Train until ``max_update`` / ``max_epoch``; validates at epoch ends and at the end; returns the summary."""
        from tqdm import tqdm

        cfg = self.cfg
        last_valid: Optional[dict] = None
        acc = _Meter()
        try:
            while not self._done():
                epoch = self.epoch
                batches = self.epoch_batches(epoch)
                if not batches:
                    raise HatError(f"{cfg.train_subset} split yields no batches (max_tokens {cfg.max_tokens} too "
                                   f"small, or fewer sentences than ranks)")
                start = self.position
                n_updates = math.ceil((len(batches) - start) / cfg.update_freq)
                bar = tqdm(total=n_updates, desc=f"epoch {epoch}", leave=False, dynamic_ncols=True,
                           disable=not (self.progress and self.dist.is_main), file=sys.stderr)
                last_valid = None
                it = self._collate_iter(batches[start:])
                pos = start
                while pos < len(batches) and not (cfg.max_update and self.num_updates >= cfg.max_update):
                    chunk = [next(it) for _ in range(min(cfg.update_freq, len(batches) - pos))]
                    t0 = time.perf_counter()
                    s = self.train_step(chunk)
                    pos += len(chunk)
                    self.position = pos
                    acc.add(s, time.perf_counter() - t0)
                    bar.update(1)
                    tok = max(s["ntokens"], 1.0)
                    bar.set_postfix(loss=f"{s['loss'] / tok:.3f}", lr=f"{s['lr']:.2e}",
                                    upd=self.num_updates, refresh=False)
                    if self.num_updates % cfg.log_interval == 0:
                        self._log({"type": "train", "update": self.num_updates, "epoch": epoch, **acc.summary()})
                        acc = _Meter()
                    if cfg.save_interval_updates and self.num_updates % cfg.save_interval_updates == 0 \
                            and pos < len(batches):
                        self.save(epoch, end_of_epoch=False)
                bar.close()
                if pos >= len(batches):  # epoch finished
                    is_best = False
                    if epoch % cfg.validate_interval == 0 or self._stops_after(epoch):
                        last_valid = self._end_validation(epoch)
                        is_best = last_valid["is_best"]
                    self.epoch, self.position = epoch + 1, 0
                    self.save(epoch, end_of_epoch=True, is_best=is_best)
                else:  # stopped by max_update mid-epoch
                    break
            if acc.n:
                self._log({"type": "train", "update": self.num_updates, "epoch": self.epoch, **acc.summary()})
            if last_valid is None:
                last_valid = self._end_validation(self.epoch)
                if self.position:
                    self.save(self.epoch, end_of_epoch=False, is_best=last_valid["is_best"])
                elif self.epoch > 1:
                    # Epoch-end checkpoint without validation (validate_interval) or a resumed finished run.
                    self.epoch -= 1
                    self.save(self.epoch, end_of_epoch=True, is_best=last_valid["is_best"])
                    self.epoch += 1
        finally:
            if self.logger is not None:
                self.logger.close()
                self.logger = None
        return TrainResult(self.num_updates, self.epoch if self.position else self.epoch - 1,
                           last_valid["loss"], last_valid["nll_loss"], self.best_valid_loss, str(self.save_dir))

    def _stops_after(self, epoch: int) -> bool:
        cfg = self.cfg
        return bool((cfg.max_epoch and epoch >= cfg.max_epoch)
                    or (cfg.max_update and self.num_updates >= cfg.max_update))

    def close(self) -> None:
        """Leave the process group (if this trainer joined one)."""
        if self.dist.enabled:
            import torch.distributed as dist
            if dist.is_initialized():
                dist.destroy_process_group()


class _BatchList(torch.utils.data.Dataset):
    """Batches as a map-style dataset, so DataLoader workers collate them (in order)."""

    def __init__(self, dataset, batches: list[list[int]]):
        self.dataset, self.batches = dataset, batches

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, i: int) -> dict:
        return self.dataset.batch(self.batches[i])


class _Meter:
    """Sums of per-update statistics between two log records."""

    def __init__(self):
        self.n = 0
        self.loss = self.nll = self.ntokens = self.nsentences = self.gnorm = self.seconds = self.distill = 0.0
        self.lr = 0.0
        self.overflows = 0

    def add(self, s: dict, seconds: float) -> None:
        self.n += 1
        self.loss += s["loss"]
        self.nll += s["nll_loss"]
        self.distill += s.get("distill_loss", 0.0)
        self.ntokens += s["ntokens"]
        self.nsentences += s["nsentences"]
        self.gnorm += s["gnorm"] if math.isfinite(s["gnorm"]) else 0.0
        self.overflows += int(s["overflow"])
        self.seconds += seconds
        self.lr = s["lr"]

    def summary(self) -> dict:
        tok = max(self.ntokens, 1.0)
        out = {"loss": self.loss / tok, "nll_loss": self.nll / tok, "ppl": math.exp(min(self.nll / tok, 50.0)),
                "lr": self.lr, "gnorm": self.gnorm / max(self.n, 1), "ntokens": self.ntokens,
                "nsentences": self.nsentences, "wps": self.ntokens / max(self.seconds, 1e-9),
                "overflows": self.overflows, "updates": self.n}
        if self.distill:  # in-place distillation: the students' cross-entropy to the largest (nats/token)
            out["distill_loss"] = self.distill / tok
        return out


def train(cfg: TrainConfig, resume: bool = False, progress: bool = True) -> TrainResult:
    """Build a :class:`Trainer` for ``cfg``, train, leave the process group; returns the :class:`TrainResult`."""
    trainer = Trainer(cfg, resume=resume, progress=progress)
    try:
        return trainer.train()
    finally:
        trainer.close()
