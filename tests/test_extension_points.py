"""Issue 27: every extension point accepts a member from outside the package, and that member passes its family's
contract tests unchanged. Each dummy below is one small class plus its registration, nothing else; the test
registers it, runs the family's contract test on it (the same function the suite runs on the built-ins) and
removes it again."""

from __future__ import annotations

import importlib.util
import json
import random
from pathlib import Path

import numpy as np
import pytest

from hat.export.formats import ExportFormat, register_export_format
from hat.latency.backends.base import Backend, Prepared
from hat.latency.runtimes import RUNTIMES, register_runtime
from hat.predictor.models import MODELS, register_predictor_model
from hat.search.pareto import ParetoResult, pareto_front, scored_archive
from hat.search.evolution import SearchResult
from hat.search.settings import SEARCH_STRATEGIES
from hat.search.strategies import SearchStrategy, register_search_strategy
from hat.export.formats import EXPORT_FORMATS

TESTS = Path(__file__).resolve().parent


def contract(path: str, name: str):
    """The contract test function ``name`` of the test module ``tests/<path>``."""
    spec = importlib.util.spec_from_file_location(f"contract_{Path(path).stem}", TESTS / path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return getattr(mod, name)


# ----- a runtime: constant latency per layer -----
class _ConstantRun(Prepared):
    def __init__(self, subnet):
        self.enc, self.dec = 0.1 * subnet.encoder_layer_num, 0.2 * subnet.decoder_layer_num

    def run_once(self):
        return self.enc, self.dec


class LayerCountBackend(Backend):
    name = "layer_count"

    def prepare(self, subnet):
        return _ConstantRun(subnet)

    def runtime_info(self):
        return "here; layer_count", "1"


# ----- a predictor model: least squares on the features -----
class LeastSquares:
    kind = "least_squares"

    def fit(self, X, y, X_val=None, y_val=None, seed=0, init=None):
        A = np.column_stack([np.asarray(X, np.float64), np.ones(len(X))])
        self.w = np.linalg.lstsq(A, np.asarray(y, np.float64), rcond=None)[0]
        return self

    def predict(self, X):
        return np.column_stack([np.asarray(X, np.float64), np.ones(len(X))]) @ self.w

    def state(self):
        import torch
        return {"w": torch.tensor(self.w)}

    @classmethod
    def from_state(cls, s):
        m = cls()
        m.w = s["w"].numpy()
        return m


# ----- an export format: the subnet as JSON -----
class SubnetJson(ExportFormat):
    name, meta_format = "subnet_json", "hat-subnet-json-1"

    def write(self, model, out, options):
        (out / "subnet.json").write_text(json.dumps(model.subnet.to_dict()))
        (out / "meta.json").write_text(json.dumps({"format": self.meta_format}))
        return [out / "subnet.json", out / "meta.json"]


# ----- a search strategy: random search -----
class RandomSearch(SearchStrategy):
    name = "random_search"

    def search(self, space, fitness, latency, budgets_ms, settings, rng, *, log=None, progress=False):
        loosest = max(budgets_ms)
        pool = [c for c in (space.sample(rng) for _ in range(4 * settings.population_size))
                if latency([c])[0] <= loosest]
        fitness(pool)
        archive = scored_archive(fitness, latency)
        results = []
        for b in sorted(budgets_ms):
            best = min((p for p in archive if p.latency_ms <= b), key=lambda p: p.loss)
            results.append(SearchResult(best=best.config, best_loss=best.loss, best_latency_ms=best.latency_ms,
                                        budget_ms=b))
        return ParetoResult(budgets_ms=sorted(budgets_ms), results=results, front=pareto_front(archive),
                            archive=archive, evaluations=fitness.evaluations, strategy=self.name)


@pytest.fixture
def registered():
    """Register the four dummies for one test, then remove them."""
    register_runtime("layer_count", LayerCountBackend)
    register_predictor_model("least_squares", LeastSquares)
    register_export_format("subnet_json", SubnetJson)
    register_search_strategy("random_search", RandomSearch)
    yield
    for registry, name in ((RUNTIMES, "layer_count"), (MODELS, "least_squares"), (EXPORT_FORMATS, "subnet_json"),
                           (SEARCH_STRATEGIES, "random_search")):
        registry.unregister(name)


def test_a_runtime_from_outside_passes_the_runtime_contract(registered, tiny_space):
    contract("latency/test_backend_contract.py", "test_backend_contract")("layer_count", tiny_space)


def test_a_predictor_model_from_outside_passes_the_model_contract(registered):
    contract("predictor/test_models.py", "test_model_contract")("least_squares")


def test_an_export_format_from_outside_passes_the_format_contract(registered, tmp_path):
    contract("export/test_format_contract.py", "test_export_format_contract")("subnet_json", tmp_path)


def test_a_search_strategy_from_outside_passes_the_strategy_contract(registered, tiny_space):
    from hat.search.settings import SearchSettings
    small = SearchSettings(population_size=8, parent_size=2, mutation_size=3, crossover_size=3, iterations=2)
    contract("search/test_strategies.py", "test_search_strategy_contract")("random_search", tiny_space, small)


def test_registered_members_are_usable_by_name(registered, tiny_space):
    """What the users of each family see: device validation accepts the runtime, the predictor fits with the model,
    hat-export's format lookup and the search settings accept the new names."""
    from hat.latency.devices import DeviceConfig
    from hat.search.settings import SearchSettings
    DeviceConfig(name="t", runtime="layer_count")
    SearchSettings(pareto_strategy="random_search")
    from hat.export.formats import export_format
    assert isinstance(export_format("subnet_json"), SubnetJson)
    from hat.latency.records import LatencyRecord
    from hat.predictor import fit_predictor
    rng = random.Random(0)
    recs = [LatencyRecord.from_subnet(c, 1.0, 2.0 * c.decoder_layer_num, runtime="debug", device="cpu", host="h")
            for c in (tiny_space.sample(rng) for _ in range(30))]
    assert fit_predictor(recs, "cpu", tiny_space, "least_squares").model_kind == "least_squares"
