import random

import pytest

from hat.errors import ConfigError, SpaceError
from hat.space import HAT_FEATURE_NAMES, SearchSpace, SubnetConfig, load_space

SPACES = ["wmt14_space0", "iwslt14_space1", "multi30k_tiny"]


@pytest.mark.parametrize("name", SPACES)
def test_operators_stay_in_space_and_are_seeded(name):
    space = load_space(name)
    rng = random.Random(1)
    for _ in range(300):
        a, b = space.sample(rng), space.sample(rng)
        for c in (a, space.mutate(a, 0.3, rng), space.crossover(a, b, rng)):
            assert space.contains(c), space.violations(c)
    r1, r2 = random.Random(7), random.Random(7)
    assert [space.sample(r1) for _ in range(5)] == [space.sample(r2) for _ in range(5)]


def test_mutate_prob_zero_is_identity_and_one_changes(tiny_space, rng):
    a = tiny_space.sample(rng)
    assert tiny_space.mutate(a, 0.0, rng) == a
    changed = sum(tiny_space.mutate(a, 1.0, rng) != a for _ in range(20))
    assert changed >= 15


def test_crossover_takes_genes_from_parents(tiny_space, rng):
    a, b = tiny_space.largest(), tiny_space.smallest()
    for _ in range(20):
        c = tiny_space.crossover(a, b, rng)
        assert c.encoder_embed_dim in (a.encoder_embed_dim, b.encoder_embed_dim)
        assert all(v in (512, 128) for v in c.encoder_ffn_embed_dim)


def test_hat_features_order():
    cfg = SubnetConfig(640, 512, 6, 2, [3072, 1024] * 3, [8, 4] * 3, [2048, 1024], [8, 4], [4, 4], [-1, 2])
    f = cfg.hat_features()
    assert len(f) == len(HAT_FEATURE_NAMES) == 10
    assert f == [640, 6, 2048, 6, 512, 2, 1536, 6, 4, 0.5]


def test_yaml_round_trip(tmp_path, tiny_space, rng):
    cfg = tiny_space.sample(rng)
    cfg.save_yaml(tmp_path / "s.yaml", predicted_latency_ms=12.5)
    assert SubnetConfig.load_yaml(tmp_path / "s.yaml") == cfg
    assert SubnetConfig.from_json(cfg.to_json()) == cfg
    tiny_space.save_yaml(tmp_path / "space.yaml")
    again = SearchSpace.from_yaml(tmp_path / "space.yaml")
    assert again == tiny_space and again.fingerprint() == tiny_space.fingerprint()


@pytest.mark.parametrize("text, msg", [
    ("name: x\nencoder_embed_dim: [64\n", "malformed YAML"),
    ("- a\n- b\n", "expected a mapping"),
    ("name: x\nbogus: 1\n", "unknown key"),
])
def test_bad_space_yaml(tmp_path, text, msg):
    p = tmp_path / "s.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError, match=msg):
        SearchSpace.from_yaml(p)


def test_check_names_offending_gene(tiny_space):
    cfg = tiny_space.largest()
    cfg.encoder_ffn_embed_dim[1] = 999
    with pytest.raises(SpaceError, match=r"encoder_ffn_embed_dim\[1\]=999"):
        tiny_space.check(cfg)


def test_layer_list_length_must_match():
    with pytest.raises(ConfigError, match="decoder_ffn_embed_dim"):
        SubnetConfig(64, 64, 1, 2, [128], [2], [128], [2, 2], [2, 2], [-1, -1])


def test_qkv_divisibility_checked(tmp_path):
    d = load_space("multi30k_tiny").to_dict()
    d["encoder_self_attention_heads"] = [3]
    with pytest.raises(ConfigError, match="divisible"):
        SearchSpace(**d)
