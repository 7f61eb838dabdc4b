import pytest

from hat.errors import ConfigError
from hat.train.config import TrainConfig, apply_overrides, load_train_config


def test_overrides_are_typed(task_yaml, tmp_path):
    cfg = load_train_config(task_yaml, ["lr=1", "adam_betas=[0.8, 0.9]", "model.dropout=0.2", "task=123",
                                        "save-dir=out"], seed=7)
    assert cfg.lr == 1.0 and isinstance(cfg.lr, float)
    assert cfg.adam_betas == [0.8, 0.9]
    assert cfg.model["dropout"] == 0.2
    assert cfg.task == "123"
    assert cfg.seed == 7
    assert cfg.save_dir.endswith("/out")


@pytest.mark.parametrize("override,msg", [
    ("nope=1", "unknown key"),
    ("max_tokens=abc", "expected an integer"),
    ("lr_scheduler=linear", "lr_scheduler"),
    ("amp=fp8", "amp"),
    ("justtext", "key=value"),
])
def test_bad_overrides(task_yaml, override, msg):
    with pytest.raises(ConfigError, match=msg):
        load_train_config(task_yaml, [override])


def test_unknown_yaml_key(tmp_path):
    p = tmp_path / "t.yaml"
    p.write_text("data: x\nsrc_lang: de\ntgt_lang: en\nspace: multi30k_tiny\nmax_update: 1\nbogus: 1\n")
    with pytest.raises(ConfigError, match="unknown key"):
        load_train_config(p)


def test_needs_a_stop_condition():
    with pytest.raises(ConfigError, match="max_update or max_epoch"):
        TrainConfig(data="d", src_lang="de", tgt_lang="en", space="s")


def test_shipped_task_configs_load():
    from hat.resources import project_root
    from hat.space import load_space
    names = sorted(p.stem for p in (project_root() / "configs" / "tasks").glob("*.yaml"))
    assert {"multi30k_de_en", "multi30k_en_de", "wmt14_en_de", "wmt14_en_fr", "wmt19_en_de",
            "iwslt14_de_en"} <= set(names)
    for n in names:
        cfg = load_train_config(n)
        load_space(cfg.space)
        assert cfg.data.startswith("/")


def test_relative_override_paths_use_cwd(task_yaml, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = apply_overrides({}, ["data=rel/dir"])
    assert cfg["data"] == str(tmp_path / "rel" / "dir")
