"""Search space and SubTransformer configs.

A :class:`SearchSpace` lists the choices of every architecture gene (HAT, Wang et al. 2020, Sec. 3): embedding dims,
per-layer FFN dims and head counts, layer counts and the decoder's arbitrary encoder-decoder attention. A
:class:`SubnetConfig` is one point in it, with per-layer lists whose length equals the active layer count.

All randomness comes from an injected ``random.Random``; nothing here touches global RNG state.

Arbitrary encoder-decoder attention (``decoder_arbitrary_ende_attn``) per decoder layer: ``-1`` attends to the last
encoder layer only, ``1`` to the last two, ``2`` to the last three; the chosen encoder layers' outputs are
concatenated along the key/value sequence axis (HAT's convention, so ``k`` means ``k + 1`` layers for ``k >= 1``).
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
from dataclasses import dataclass, field
from typing import Optional

from hat.config import dump_yaml, from_dict, load_yaml, to_dict
from hat.errors import ConfigError, SpaceError
from hat.hat_yaml import is_hat_format, read_hat_yaml, space_fields, subnet_fields

HAT_FEATURE_NAMES = (
    "encoder_embed_dim",
    "encoder_layer_num",
    "encoder_ffn_embed_dim_avg",
    "encoder_self_attention_heads_avg",
    "decoder_embed_dim",
    "decoder_layer_num",
    "decoder_ffn_embed_dim_avg",
    "decoder_self_attention_heads_avg",
    "decoder_ende_attention_heads_avg",
    "decoder_arbitrary_ende_attn_avg",
)

# Per-layer genes: (name, which stack). Their list length equals that stack's layer count.
ENCODER_LAYER_GENES = ("encoder_ffn_embed_dim", "encoder_self_attention_heads")
DECODER_LAYER_GENES = (
    "decoder_ffn_embed_dim",
    "decoder_self_attention_heads",
    "decoder_ende_attention_heads",
    "decoder_arbitrary_ende_attn",
)
GLOBAL_GENES = ("encoder_embed_dim", "decoder_embed_dim", "encoder_layer_num", "decoder_layer_num")


def num_ende_layers(arbitrary_ende_attn: int) -> int:
    """Number of encoder layers a decoder layer attends to: -1 -> 1, k >= 1 -> k + 1."""
    return 1 if arbitrary_ende_attn == -1 else arbitrary_ende_attn + 1


@dataclass
class SubnetConfig:
    """One SubTransformer. Per-layer lists have exactly ``*_layer_num`` entries (layer 0 first)."""

    encoder_embed_dim: int
    decoder_embed_dim: int
    encoder_layer_num: int
    decoder_layer_num: int
    encoder_ffn_embed_dim: list[int]
    encoder_self_attention_heads: list[int]
    decoder_ffn_embed_dim: list[int]
    decoder_self_attention_heads: list[int]
    decoder_ende_attention_heads: list[int]
    # Per decoder layer: -1 = last encoder layer, 1 = last two, 2 = last three (outputs concatenated on the seq axis).
    decoder_arbitrary_ende_attn: list[int]

    def __post_init__(self):
        for g in ENCODER_LAYER_GENES:
            if len(getattr(self, g)) != self.encoder_layer_num:
                raise ConfigError(f"{g} has {len(getattr(self, g))} entries but encoder_layer_num is "
                                  f"{self.encoder_layer_num}")
        for g in DECODER_LAYER_GENES:
            if len(getattr(self, g)) != self.decoder_layer_num:
                raise ConfigError(f"{g} has {len(getattr(self, g))} entries but decoder_layer_num is "
                                  f"{self.decoder_layer_num}")

    # ----- identity -----
    def key(self) -> tuple:
        """Hashable identity, for caches and de-duplication."""
        return tuple(tuple(v) if isinstance(v, list) else v for v in dataclasses.astuple(self))

    def __hash__(self) -> int:
        return hash(self.key())

    # ----- serialization -----
    def to_dict(self) -> dict:
        return to_dict(self)

    @classmethod
    def from_dict(cls, d: dict, where: str = "") -> "SubnetConfig":
        """Build from a mapping; unknown keys are errors. Extra metadata may live under key ``subnet``."""
        if "subnet" in d and isinstance(d["subnet"], dict):
            d = d["subnet"]
        return from_dict(cls, d, where)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"))

    @classmethod
    def from_json(cls, s: str) -> "SubnetConfig":
        try:
            d = json.loads(s)
        except json.JSONDecodeError as e:
            raise ConfigError(f"subnet JSON is malformed: {e}") from None
        return cls.from_dict(d)

    @classmethod
    def from_hat(cls, data: dict, where: str = "HAT config") -> "SubnetConfig":
        """From HAT's ``*-subtransformer`` flags (a parsed HAT file, :func:`hat.hat_yaml.read_hat_yaml`).

        Raises:
            ConfigError: a flag is missing, a list is shorter than its layer count, or the config is invalid.
        """
        fields = subnet_fields(data, where)
        try:
            return cls(**fields)
        except (TypeError, ValueError) as e:
            raise ConfigError(f"{where}: {e}") from None

    def save_yaml(self, path: str | os.PathLike, **metadata) -> None:
        """Write ``{subnet: {...}, **metadata}`` to ``path`` (metadata e.g. predicted latency, params)."""
        data = {"subnet": self.to_dict()}
        data.update(metadata)
        dump_yaml(data, path)

    @classmethod
    def load_yaml(cls, path: str | os.PathLike) -> "SubnetConfig":
        """Read a subnet YAML: either the genes at top level or under ``subnet:`` (other top-level keys ignored), or
        HAT's SubTransformer format (``encoder-embed-dim-subtransformer: 512``, see :mod:`hat.hat_yaml`)."""
        d = load_yaml(path)
        if is_hat_format(d):
            return cls.from_hat(read_hat_yaml(path), str(path))
        if "subnet" in d:
            if not isinstance(d["subnet"], dict):
                raise ConfigError(f"{path}: 'subnet' must be a mapping")
            return from_dict(cls, d["subnet"], f"{path}: subnet")
        return from_dict(cls, d, str(path))

    # ----- features -----
    def hat_features(self) -> list[float]:
        """HAT's 10 latency features, in HAT's order (:data:`HAT_FEATURE_NAMES`)."""
        def avg(xs):
            return float(sum(xs)) / len(xs)
        return [
            float(self.encoder_embed_dim),
            float(self.encoder_layer_num),
            avg(self.encoder_ffn_embed_dim),
            avg(self.encoder_self_attention_heads),
            float(self.decoder_embed_dim),
            float(self.decoder_layer_num),
            avg(self.decoder_ffn_embed_dim),
            avg(self.decoder_self_attention_heads),
            avg(self.decoder_ende_attention_heads),
            avg(self.decoder_arbitrary_ende_attn),
        ]

    def is_uniform(self) -> list[str]:
        """Names of per-layer genes whose values differ across layers (empty list = uniform config)."""
        out = []
        for g in ENCODER_LAYER_GENES + DECODER_LAYER_GENES:
            if len(set(getattr(self, g))) > 1:
                out.append(g)
        return out


PER_LAYER_GENES = ENCODER_LAYER_GENES + DECODER_LAYER_GENES


@dataclass
class SpaceConstraint:
    """What a runtime can execute, as rules on genes (declared by the runtime's latency backend, e.g. CTranslate2:
    one head count per encoder and one per decoder, the decoder attending to the last encoder layer only).

    A space constrained by it (:meth:`SearchSpace.constrained`) samples, mutates and crosses over only configs that
    keep the rules, so a search on it never leaves what the runtime executes.

    Attributes:
        name: who declares it (a runtime name).
        choices: gene -> the values allowed; the space's choices are narrowed to them.
        tied: groups of per-layer genes that take one value, in every layer and across the group's genes (a tied
            group is one gene to the evolution: its value is its first gene's in layer 0).
    """

    name: str
    choices: dict[str, list[int]] = field(default_factory=dict)
    tied: list[list[str]] = field(default_factory=list)

    def __post_init__(self):
        known = GLOBAL_GENES + PER_LAYER_GENES
        for g in list(self.choices) + [g for group in self.tied for g in group]:
            if g not in known:
                raise ConfigError(f"constraint {self.name}: unknown gene '{g}'")
        for group in self.tied:
            if not group or any(g not in PER_LAYER_GENES for g in group):
                raise ConfigError(f"constraint {self.name}: tied genes must be per-layer genes, got {group}")

    def violations(self, cfg: SubnetConfig) -> list[str]:
        """Why ``cfg`` breaks the rules, one reason per gene (empty = it keeps them)."""
        out = []
        for g, allowed in self.choices.items():
            vals = getattr(cfg, g)
            bad = sorted({v for v in (vals if isinstance(vals, list) else [vals]) if v not in allowed})
            if bad:
                out.append(f"{g}={bad[0] if len(bad) == 1 else bad} ({self.name} executes {allowed})")
        for group in self.tied:
            vals = {g: getattr(cfg, g) for g in group}
            if len({v for vs in vals.values() for v in vs}) > 1:
                shown = "; ".join(f"{g}={v}" for g, v in vals.items())
                out.append(f"{shown} ({self.name} executes one value for "
                           f"{'every layer' if len(group) == 1 else ' and '.join(group) + ' in every layer'})")
        return out

    def apply(self, cfg: SubnetConfig) -> SubnetConfig:
        """``cfg`` with every tied group set to its first gene's layer-0 value (choices are the space's job)."""
        if not self.tied:
            return cfg
        d = cfg.to_dict()
        for group in self.tied:
            v = d[group[0]][0]
            for g in group:
                d[g] = [v] * len(d[g])
        return SubnetConfig(**d)


@dataclass
class SearchSpace:
    """Choices for every gene, plus the SuperTransformer's fixed dims.

    The SuperTransformer is built with the max of each choice list (its weights hold every SubTransformer).
    ``constraint`` (see :meth:`constrained`) restricts the space to what one runtime executes.
    """

    name: str
    encoder_embed_dim: list[int]
    decoder_embed_dim: list[int]
    encoder_ffn_embed_dim: list[int]
    decoder_ffn_embed_dim: list[int]
    encoder_layer_num: list[int]
    decoder_layer_num: list[int]
    encoder_self_attention_heads: list[int]
    decoder_self_attention_heads: list[int]
    decoder_ende_attention_heads: list[int]
    decoder_arbitrary_ende_attn: list[int] = field(default_factory=lambda: [-1])
    # Fixed q/k/v projection width of every attention (HAT: 512). Head dim = qkv_dim // heads, so heads must divide it.
    qkv_dim: int = 512
    description: str = ""
    constraint: Optional[SpaceConstraint] = None  # what a runtime executes (None: every config of the space)

    def __post_init__(self):
        for g in GLOBAL_GENES + ENCODER_LAYER_GENES + DECODER_LAYER_GENES:
            vals = getattr(self, g)
            if not vals:
                raise ConfigError(f"space {self.name}: {g} needs at least one choice")
            if len(set(vals)) != len(vals):
                raise ConfigError(f"space {self.name}: {g} has duplicate choices {vals}")
        for g in GLOBAL_GENES + ENCODER_LAYER_GENES + DECODER_LAYER_GENES[:-1]:
            if min(getattr(self, g)) <= 0:
                raise ConfigError(f"space {self.name}: {g} choices must be positive, got {getattr(self, g)}")
        for v in self.decoder_arbitrary_ende_attn:
            if v != -1 and v < 1:
                raise ConfigError(f"space {self.name}: decoder_arbitrary_ende_attn choices must be -1 or >= 1, got {v}")
        for g in ("encoder_self_attention_heads", "decoder_self_attention_heads", "decoder_ende_attention_heads"):
            for h in getattr(self, g):
                if self.qkv_dim % h:
                    raise ConfigError(f"space {self.name}: qkv_dim {self.qkv_dim} is not divisible by {g} choice {h}")
        need = max(num_ende_layers(v) for v in self.decoder_arbitrary_ende_attn)
        if need > min(self.encoder_layer_num):
            raise ConfigError(f"space {self.name}: arbitrary attention needs {need} encoder layers but the "
                              f"smallest encoder_layer_num is {min(self.encoder_layer_num)}")
        if self.constraint is not None:
            self._check_constraint(self.constraint)

    def _check_constraint(self, c: SpaceConstraint) -> None:
        for g, allowed in c.choices.items():
            extra = [v for v in getattr(self, g) if v not in allowed]
            if extra:
                raise ConfigError(f"space {self.name}: {g} choices {extra} are outside constraint {c.name}'s "
                                  f"{allowed}")
        for group in c.tied:
            if len({tuple(sorted(getattr(self, g))) for g in group}) > 1:
                raise ConfigError(f"space {self.name}: tied genes {group} of constraint {c.name} have different "
                                  f"choices")

    def constrained(self, constraint: Optional[SpaceConstraint]) -> "SearchSpace":
        """This space narrowed to what ``constraint`` allows (itself when None): choices intersected with the
        constraint's, tied genes given their common choices; sampling, mutation and crossover then keep the rules.

        Raises:
            ConfigError: a gene would have no choice left (the runtime executes no config of this space).
        """
        if constraint is None:
            return self
        if self.constraint is not None:
            constraint = SpaceConstraint(
                name=f"{self.constraint.name}+{constraint.name}",
                choices={**self.constraint.choices, **{g: [v for v in vs if v in self.constraint.choices.get(g, vs)]
                                                       for g, vs in constraint.choices.items()}},
                tied=self.constraint.tied + constraint.tied)
        d = self.to_dict()
        d.pop("constraint", None)
        for g, allowed in constraint.choices.items():
            d[g] = [v for v in d[g] if v in allowed]
        for group in constraint.tied:
            common = [v for v in d[group[0]] if all(v in d[g] for g in group)]
            for g in group:
                d[g] = list(common)
        empty = [g for g in GLOBAL_GENES + PER_LAYER_GENES if not d[g]]
        if empty:
            raise ConfigError(f"space {self.name}: runtime constraint {constraint.name} leaves no choice for "
                              f"{', '.join(empty)}")
        return SearchSpace(**{**d, "constraint": constraint})

    def _legal(self, cfg: SubnetConfig) -> SubnetConfig:
        return cfg if self.constraint is None else self.constraint.apply(cfg)

    # ----- io -----
    @classmethod
    def from_yaml(cls, path: str | os.PathLike) -> "SearchSpace":
        """Load a space YAML (strict: unknown keys and bad values raise ConfigError), or HAT's SuperTransformer
        format (``encoder-embed-choice: [640, 512]``, see :mod:`hat.hat_yaml`), named after the file."""
        d = load_yaml(path)
        if is_hat_format(d):
            return cls.from_hat(read_hat_yaml(path), os.path.splitext(os.path.basename(path))[0], str(path))
        return from_dict(cls, d, str(path))

    @classmethod
    def from_hat(cls, data: dict, name: str, where: str = "HAT config") -> "SearchSpace":
        """From HAT's ``*-choice`` flags and ``qkv-dim`` (a parsed HAT file, :func:`hat.hat_yaml.read_hat_yaml`).

        Raises:
            ConfigError: a choice flag is missing, a choice exceeds the super dims the file gives, or the space is
                invalid.
        """
        fields = space_fields(data, name, where)
        try:
            return cls(**fields)
        except (TypeError, ValueError) as e:
            raise ConfigError(f"{where}: {e}") from None

    def to_dict(self) -> dict:
        d = to_dict(self)
        if d.get("constraint") is None:  # an unconstrained space reads (and fingerprints) as before constraints
            d.pop("constraint", None)
        return d

    def save_yaml(self, path: str | os.PathLike) -> None:
        dump_yaml(self.to_dict(), path)

    def fingerprint(self) -> str:
        """Stable short id of the choices and the constraint (not the name), to check a predictor/supernet matches
        this space."""
        return _digest(self.to_dict())

    # ----- supernet dims -----
    @property
    def max_encoder_embed_dim(self) -> int:
        return max(self.encoder_embed_dim)

    @property
    def max_decoder_embed_dim(self) -> int:
        return max(self.decoder_embed_dim)

    @property
    def max_encoder_ffn_embed_dim(self) -> int:
        return max(self.encoder_ffn_embed_dim)

    @property
    def max_decoder_ffn_embed_dim(self) -> int:
        return max(self.decoder_ffn_embed_dim)

    @property
    def max_encoder_layer_num(self) -> int:
        return max(self.encoder_layer_num)

    @property
    def max_decoder_layer_num(self) -> int:
        return max(self.decoder_layer_num)

    # ----- membership -----
    def violations(self, cfg: SubnetConfig) -> list[str]:
        """Human-readable reasons ``cfg`` is outside the space (empty list = inside)."""
        out = []
        for g in GLOBAL_GENES:
            if getattr(cfg, g) not in getattr(self, g):
                out.append(f"{g}={getattr(cfg, g)} not in {getattr(self, g)}")
        for g in ENCODER_LAYER_GENES + DECODER_LAYER_GENES:
            for i, v in enumerate(getattr(cfg, g)):
                if v not in getattr(self, g):
                    out.append(f"{g}[{i}]={v} not in {getattr(self, g)}")
        for i, v in enumerate(cfg.decoder_arbitrary_ende_attn):
            if num_ende_layers(v) > cfg.encoder_layer_num:
                out.append(f"decoder_arbitrary_ende_attn[{i}]={v} needs more than {cfg.encoder_layer_num} encoder layers")
        if self.constraint is not None:
            out += self.constraint.violations(cfg)
        return out

    def contains(self, cfg: SubnetConfig) -> bool:
        """True when every gene of ``cfg`` is one of this space's choices."""
        return not self.violations(cfg)

    def check(self, cfg: SubnetConfig, what: str = "subnet") -> SubnetConfig:
        """Return ``cfg`` or raise SpaceError naming the first genes outside the space."""
        v = self.violations(cfg)
        if v:
            more = f" (and {len(v) - 3} more)" if len(v) > 3 else ""
            raise SpaceError(f"{what} is outside search space '{self.name}': {'; '.join(v[:3])}{more}")
        return cfg

    # ----- corners -----
    def largest(self) -> SubnetConfig:
        """The largest SubTransformer (max of every gene; arbitrary attention = last layer only)."""
        return self._uniform(max, ende=-1 if -1 in self.decoder_arbitrary_ende_attn
                             else min(self.decoder_arbitrary_ende_attn))

    def smallest(self) -> SubnetConfig:
        """The smallest SubTransformer (min of every gene)."""
        return self._uniform(min, ende=-1 if -1 in self.decoder_arbitrary_ende_attn
                             else min(self.decoder_arbitrary_ende_attn))

    def _uniform(self, pick, ende: int) -> SubnetConfig:
        el, dl = pick(self.encoder_layer_num), pick(self.decoder_layer_num)
        return SubnetConfig(
            encoder_embed_dim=pick(self.encoder_embed_dim),
            decoder_embed_dim=pick(self.decoder_embed_dim),
            encoder_layer_num=el,
            decoder_layer_num=dl,
            encoder_ffn_embed_dim=[pick(self.encoder_ffn_embed_dim)] * el,
            encoder_self_attention_heads=[pick(self.encoder_self_attention_heads)] * el,
            decoder_ffn_embed_dim=[pick(self.decoder_ffn_embed_dim)] * dl,
            decoder_self_attention_heads=[pick(self.decoder_self_attention_heads)] * dl,
            decoder_ende_attention_heads=[pick(self.decoder_ende_attention_heads)] * dl,
            decoder_arbitrary_ende_attn=[ende] * dl,
        )

    # ----- evolution operators (genotype = every gene at max layer count; inactive tail is dropped) -----
    def _ende_choices(self, encoder_layer_num: int) -> list[int]:
        return [v for v in self.decoder_arbitrary_ende_attn if num_ende_layers(v) <= encoder_layer_num]

    def _sample_gene(self, g: str, rng: random.Random, encoder_layer_num: Optional[int] = None):
        if g == "decoder_arbitrary_ende_attn":
            return rng.choice(self._ende_choices(encoder_layer_num or min(self.encoder_layer_num)))
        return rng.choice(getattr(self, g))

    def _genotype(self, cfg: SubnetConfig, rng: random.Random) -> dict:
        """Pad per-layer lists to the max layer count with sampled values (inactive genes, as in HAT)."""
        d = cfg.to_dict()
        for g in ENCODER_LAYER_GENES:
            d[g] = d[g] + [self._sample_gene(g, rng) for _ in range(self.max_encoder_layer_num - len(d[g]))]
        for g in DECODER_LAYER_GENES:
            d[g] = d[g] + [self._sample_gene(g, rng, cfg.encoder_layer_num)
                           for _ in range(self.max_decoder_layer_num - len(d[g]))]
        return d

    def _phenotype(self, d: dict) -> SubnetConfig:
        el, dl = d["encoder_layer_num"], d["decoder_layer_num"]
        d = dict(d)
        for g in ENCODER_LAYER_GENES:
            d[g] = list(d[g][:el])
        for g in DECODER_LAYER_GENES:
            d[g] = list(d[g][:dl])
        # A shallower encoder may invalidate arbitrary-attention choices: clamp to the deepest allowed.
        allowed = self._ende_choices(el)
        d["decoder_arbitrary_ende_attn"] = [
            v if v in allowed else max(allowed, key=num_ende_layers) for v in d["decoder_arbitrary_ende_attn"]
        ]
        return SubnetConfig(**d)

    def sample(self, rng: random.Random) -> SubnetConfig:
        """A uniformly random SubTransformer (each gene, each layer, independently; a tied group of the constraint
        is one gene)."""
        el = rng.choice(self.encoder_layer_num)
        dl = rng.choice(self.decoder_layer_num)
        return self._legal(SubnetConfig(
            encoder_embed_dim=rng.choice(self.encoder_embed_dim),
            decoder_embed_dim=rng.choice(self.decoder_embed_dim),
            encoder_layer_num=el,
            decoder_layer_num=dl,
            encoder_ffn_embed_dim=[rng.choice(self.encoder_ffn_embed_dim) for _ in range(el)],
            encoder_self_attention_heads=[rng.choice(self.encoder_self_attention_heads) for _ in range(el)],
            decoder_ffn_embed_dim=[rng.choice(self.decoder_ffn_embed_dim) for _ in range(dl)],
            decoder_self_attention_heads=[rng.choice(self.decoder_self_attention_heads) for _ in range(dl)],
            decoder_ende_attention_heads=[rng.choice(self.decoder_ende_attention_heads) for _ in range(dl)],
            decoder_arbitrary_ende_attn=[rng.choice(self._ende_choices(el)) for _ in range(dl)],
        ))

    def mutate(self, cfg: SubnetConfig, prob: float, rng: random.Random) -> SubnetConfig:
        """Resample each gene (each layer's gene separately) with probability ``prob`` (HAT: 0.3)."""
        d = self._genotype(cfg, rng)
        for g in GLOBAL_GENES:
            if rng.random() < prob:
                d[g] = rng.choice(getattr(self, g))
        for g in ENCODER_LAYER_GENES + DECODER_LAYER_GENES:
            d[g] = [self._sample_gene(g, rng, d["encoder_layer_num"]) if rng.random() < prob else v for v in d[g]]
        return self._legal(self._phenotype(d))

    def crossover(self, a: SubnetConfig, b: SubnetConfig, rng: random.Random) -> SubnetConfig:
        """Uniform crossover: every gene (every layer's gene) taken from ``a`` or ``b`` with probability 1/2."""
        da, db = self._genotype(a, rng), self._genotype(b, rng)
        d = {}
        for g in GLOBAL_GENES:
            d[g] = da[g] if rng.random() < 0.5 else db[g]
        for g in ENCODER_LAYER_GENES + DECODER_LAYER_GENES:
            d[g] = [x if rng.random() < 0.5 else y for x, y in zip(da[g], db[g])]
        return self._legal(self._phenotype(d))

    def widened(self, factor: float = 0.1) -> "SearchSpace":
        """A space whose dims reach ``factor`` beyond this one's (HAT profiles latency on a slightly wider space so
        the predictor does not extrapolate at the corners). Layer counts and arbitrary attention are unchanged;
        embed and FFN dims gain one larger and one smaller choice, rounded to multiples of 8 and of qkv heads."""
        def widen(vals: list[int]) -> list[int]:
            lo, hi = min(vals), max(vals)
            extra = [max(8, int(round(lo * (1 - factor) / 8)) * 8), int(round(hi * (1 + factor) / 8)) * 8]
            return sorted(set(vals) | set(extra))
        d = self.to_dict()
        d.pop("constraint", None)
        d["name"] = f"{self.name}_wide"
        for g in ("encoder_embed_dim", "decoder_embed_dim", "encoder_ffn_embed_dim", "decoder_ffn_embed_dim"):
            d[g] = widen(d[g])
        return SearchSpace(**d).constrained(self.constraint)


def _digest(space_dict: dict) -> str:
    import hashlib
    d = {k: v for k, v in space_dict.items() if k not in ("name", "description")}
    return hashlib.sha1(json.dumps(d, sort_keys=True).encode()).hexdigest()[:12]


def load_space(name_or_path: str | os.PathLike) -> SearchSpace:
    """Load a space by path, or by name from the packaged ``configs/spaces/<name>.yaml``."""
    from hat.resources import resolve_config
    return SearchSpace.from_yaml(resolve_config("spaces", name_or_path))
