"""The README's "Coming from HAT" commands run, on a checkpoint written by HAT's own code (tiny fixture)."""

from __future__ import annotations

import re
import shlex
import shutil

from pathlib import Path

from hat.cli import export, predictor, profile, search, train, translate
from hat.space import SubnetConfig

REPO_ROOT = Path(__file__).resolve().parents[2]
MAINS = {"hat-profile": profile.main, "hat-predictor": predictor.main, "hat-search": search.main,
         "hat-train": train.main, "hat-translate": translate.main, "hat-export": export.main}

SEARCH_SETTINGS = """population_size: 6
parent_size: 2
mutation_size: 2
crossover_size: 2
iterations: 2
valid_subset: 8
valid_max_tokens: 300
"""


def readme_commands(readme: str) -> list[list[str]]:
    """The hat commands of the README block between the hat-mapping markers (continuations joined)."""
    block = re.search(r"<!-- hat-mapping:begin -->\n```bash\n(.*?)```\n<!-- hat-mapping:end -->", readme, re.S)
    assert block, "README lacks the hat-mapping block"
    text = re.sub(r"\\\n\s*", " ", block.group(1))
    return [shlex.split(line) for line in text.splitlines() if line.strip() and not line.startswith("#")]


def test_readme_hat_mapping_runs_on_the_fixture(shared_dir, hat_data_bin, tmp_path, monkeypatch, capsys):
    fx = shared_dir / "fixtures" / "hat_supertransformer_tiny"
    readme = (REPO_ROOT / "README.md").read_text()
    cmds = readme_commands(readme)
    assert [c[0] for c in cmds] == ["hat-profile", "hat-predictor", "hat-search", "hat-train", "hat-translate",
                                    "hat-translate", "hat-export"]
    (tmp_path / "search.yaml").write_text(SEARCH_SETTINGS)
    # README paths (HAT's download layout) -> the fixture; sizes -> test sizes; this CPU -> the debug device.
    subs = {"configs/wmt14.en-de/supertransformer/space0.yml": str(fx / "space_tiny.yml"),
            "downloaded_models/HAT_wmt14ende_super_space0.pt": str(fx / "checkpoint.pt"),
            "downloaded_models/HAT_wmt14ende_xeon@204.2ms_bleu@27.6.pt": str(fx / "checkpoint_sub_small.pt"),
            "configs/wmt14.en-de/subtransformer/HAT_wmt14ende_xeon@204.2ms_bleu@27.6.yml": str(fx / "sub_small.yml"),
            "data/binary/wmt16_en_de": str(hat_data_bin), "cpu": "debug", "2000": "40", "200ms": "1000000ms"}
    extra = {"hat-search": ["--config", str(tmp_path / "search.yaml"), "--no-progress"],
             "hat-train": ["--max-update", "2", "--amp", "none", "--device", "cpu", "--set", "update_freq=1",
                           "--set", "max_tokens=300", "--set", "warmup_updates=1", "--no-progress"],
             "hat-translate": ["--max-sentences", "2", "--quiet"]}
    monkeypatch.chdir(tmp_path)
    for cmd in cmds:
        argv = [subs.get(a, a) for a in cmd[1:]] + extra.get(cmd[0], [])
        rc = MAINS[cmd[0]](argv)
        err = capsys.readouterr().err
        assert rc == 0, (cmd[0], argv, err[-2000:])
    # hat-search wrote the HAT-format SubTransformer next to subnet.yaml, and it is the same SubTransformer.
    assert SubnetConfig.load_yaml("search_cpu/subnet_hat.yml") == SubnetConfig.load_yaml("search_cpu/subnet.yaml")
    # The SubTransformer trained from HAT's SuperTransformer keeps HAT's semantics.
    from hat.checkpoints import load_model
    trained, _ = load_model(tmp_path / "sub_cpu" / "checkpoint_last.pt")
    assert trained.cfg.hat_compat and trained.cfg.hat_super_encoder_embed_dim == 64
    # The SubTransformer checkpoint and the SuperTransformer + its yml translate identically.
    assert (tmp_path / "test.hyp").read_text() == (tmp_path / "test_from_super.hyp").read_text()
    assert (tmp_path / "onnx_cpu" / "encoder.onnx").is_file()
