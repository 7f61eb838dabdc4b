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
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Optional

import torch

from hat.distributed import init_distributed
from hat.errors import ConfigError, HatError
from hat.checkpoints import save_checkpoint
from hat.train import checkpoint as ckpt_io
from hat.train.build import build_model, build_optimizer, model_config_for, resolve_device
from hat.train.config import TrainConfig
from hat.train.data import ensure_data
from hat.train.evaluate import prepare_batches, valid_sums
from hat.train.loggers import JsonlLogger, TensorBoardLogger
from hat.train.resume import restore
from hat.train.supernet_update import NTOKENS, STATS, accumulate_gradients, stable_seed, update_subnets

__all__ = ["TrainResult", "Trainer", "train"]


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
        from hat.data import load_split
        from hat.space import load_space

        self.cfg = cfg
        self.progress = progress
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        self.device = resolve_device(cfg.device)
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

        self.space = load_space(cfg.space)
        built = build_model(cfg, self.space,
                            model_config_for(cfg, self.train_data.src_dict, self.train_data.tgt_dict))
        self.model, self.model_cfg, self.subnet = built.model, built.model_cfg, built.subnet
        self.padding_idx = self.model_cfg.padding_idx
        self.model.to(self.device)
        self.params = [p for p in self.model.parameters() if p.requires_grad]

        opt = build_optimizer(cfg, self.params)
        self.optimizer, self.schedule, self.amp_dtype, self.scaler = opt.optimizer, opt.schedule, opt.amp_dtype, \
            opt.scaler

        # Progress state (restored by resume).
        self.num_updates = 0
        self.epoch = 1          # epoch to continue in
        self.position = 0       # batches of that epoch already consumed (this rank's shard)
        self.best_valid_loss: Optional[float] = None
        state = None
        if resume:
            state = restore(self.save_dir, cfg, self.space, self.subnet, self.model, self.optimizer, self.scaler,
                            self.dist.world_size,
                            warn=lambda m: print(f"hat-train: {m}", file=sys.stderr) if self.dist.is_main else None)
        if state is not None:
            self.num_updates, self.epoch, self.position = state.update, state.epoch, state.position
            self.best_valid_loss = state.best_valid_loss
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
                                          self.num_updates if state is not None else None)
        self._valid_batches: Optional[list[dict]] = None

    # ----- setup helpers -----
    def _barrier(self) -> None:
        if self.dist.enabled:
            import torch.distributed as dist
            dist.barrier()

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
        ntokens = float(stats[NTOKENS])
        if ntokens > 0:
            for g in grads:
                g.mul_(1.0 / ntokens)
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
        return {**{name: float(v) for name, v in zip(STATS, stats.tolist())}, "gnorm": gnorm, "lr": lr,
                "overflow": overflow}

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
        save_checkpoint(state, first)
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
        """Close the training log and leave the process group (if this trainer joined one)."""
        if self.logger is not None:
            self.logger.close()
            self.logger = None
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
