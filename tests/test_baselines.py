"""HAT's baselines in a space (hat.baselines): scaled Transformers, corners, the seeded ranking set."""

from hat.baselines import baselines, ranking_configs, save_subnet
from hat.config import load_yaml
from hat.space import SubnetConfig, load_space


def test_multi30k_cpu_baselines_span_the_space():
    space = load_space("multi30k_cpu")
    base = baselines(space)
    assert set(base) == {"Transformer-largest", "Transformer-smallest", "Transformer-e2d2", "Transformer-e2d1",
                         "Transformer-w144", "Transformer-w96"}
    for name, cfg in base.items():
        space.check(cfg, name)
        assert cfg.is_uniform() == [], name  # [] = no gene differs across layers
    assert base["Transformer-e2d1"].decoder_layer_num == 1 and base["Transformer-e2d1"].encoder_embed_dim == 192
    assert base["Transformer-w96"].encoder_layer_num == 3 and base["Transformer-w96"].decoder_ffn_embed_dim == [192] * 3
    rank = ranking_configs(space, 6)
    assert len(rank) >= 10 and len({c.key() for c in rank.values()}) == len(rank)
    assert rank == ranking_configs(space, 6)  # seeded: the same set in every sitting


def test_baselines_are_uniform_members_of_the_space(tiny_space):
    base = baselines(tiny_space)
    # one encoder depth in the tiny space: layer scaling moves the decoder only
    assert set(base) == {"Transformer-largest", "Transformer-smallest", "Transformer-e3d2", "Transformer-e3d1",
                         "Transformer-w96"}
    for name, cfg in base.items():
        tiny_space.check(cfg, name)
        assert cfg.is_uniform() == [], name
    assert len({c.key() for c in base.values()}) == len(base)


def test_save_subnet_records_space_params_and_flops_once(tmp_path):
    space = load_space("multi30k_cpu")
    path = save_subnet(space.smallest(), tmp_path / "s" / "x.yaml", space)
    meta = load_yaml(path)
    assert meta["space"] == "multi30k_cpu" and meta["params"] > 0 and meta["flops"] > 0
    assert SubnetConfig.load_yaml(path) == space.smallest()
    save_subnet(space.largest(), path, space)  # kept: the file names one model for the whole run
    assert SubnetConfig.load_yaml(path) == space.smallest()
