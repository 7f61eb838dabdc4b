"""hat.pipeline: stages that resume, jobs shared between processes, and the steps' small pieces."""

import json
import os
import subprocess
import sys

import pytest

from hat import pipeline
from hat.errors import HatError
from hat.space import load_space


def test_stages_skip_finished_ones(tmp_path):
    calls, lines = [], []
    st = pipeline.Stages(tmp_path, log=lines.append)
    first = st.stage("x", lambda: calls.append(1) or {"a": 1})
    again = st.stage("x", lambda: calls.append(2) or {"a": 2})
    assert calls == [1] and first["a"] == again["a"] == 1
    assert json.loads((tmp_path / ".stages" / "x.json").read_text())["a"] == 1
    assert "done already" in lines[-1]


def test_finished_stages_reads_results_by_pattern(tmp_path):
    assert pipeline.finished_stages(tmp_path / "missing") == {}
    st = pipeline.Stages(tmp_path, log=lambda m: None)
    assert st.result("scratch_a_seed0") is None
    st.stage("scratch_a_seed0", lambda: {"bleu": 1.0})
    st.stage("scratch_a_seed1", lambda: {"bleu": 2.0})
    st.stage("search", lambda: {})
    assert st.result("scratch_a_seed0")["bleu"] == 1.0 and st.marker("search").is_file()
    assert list(pipeline.finished_stages(tmp_path, "scratch_*_seed0")) == ["scratch_a_seed0"]
    assert sorted(pipeline.finished_stages(tmp_path)) == ["scratch_a_seed0", "scratch_a_seed1", "search"]


def test_budgets_are_latency_quartiles(tmp_path):
    from hat.latency.records import CsvAppender, LatencyRecord
    cfg = load_space("multi30k_tiny").smallest()
    with CsvAppender(tmp_path / "lat.csv") as appender:
        for ms in range(1, 10):
            appender.append(LatencyRecord.from_subnet(cfg, float(ms), 0.0, 0.0, 0.0))
    assert pipeline.latency_budgets(tmp_path / "lat.csv")["budgets_ms"] == [3.0, 5.0, 7.0]


def test_predicted_budgets_are_feasible_however_noisy_the_profile(tmp_path):
    """The quickstart's budgets are percentiles of the profiled configs' *predicted* latencies: never below the
    fastest prediction, where a noisy profile's measured 25th percentile was (issue 26, 2 busy loops)."""
    import random
    from hat.latency.records import CsvAppender, LatencyRecord, read_latency_csv
    space = load_space("multi30k_tiny")
    rng = random.Random(0)
    with CsvAppender(tmp_path / "lat.csv") as appender:
        for _ in range(40):
            cfg = space.sample(rng)
            noisy_ms = 5.0 + cfg.decoder_layer_num * 3.0 + rng.choice([-4.0, 0.0, 6.0])  # a loaded machine's spread
            appender.append(LatencyRecord.from_subnet(cfg, noisy_ms, 0.0, 0.0, 0.0))
    pipeline.fit_latency_predictor(tmp_path / "lat.csv", "cpu", "multi30k_tiny", tmp_path / "pred.pt", log=print)
    from hat.predictor import load_predictor
    pred = load_predictor(tmp_path / "pred.pt")
    out = pipeline.latency_budgets(tmp_path / "lat.csv", predictor=tmp_path / "pred.pt")
    assert out["source"] == "predicted" and out["budgets_ms"] == sorted(out["budgets_ms"])
    fastest_profiled = min(pred.predict_records(read_latency_csv(tmp_path / "lat.csv")))
    assert out["budgets_ms"][0] >= fastest_profiled


def test_search_settings_keep_fast_yaml_and_split_the_population():
    s = pipeline.search_settings(40, 8, valid_subset=300)
    assert (s.population_size, s.parent_size, s.mutation_size, s.crossover_size) == (40, 10, 15, 15)
    assert s.iterations == 8 and s.valid_subset == 300


def started(marker):
    """A sleeping process whose command line holds ``marker`` (waits until it has exec'd)."""
    import time
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", marker])
    for _ in range(500):
        try:
            if marker in open(f"/proc/{proc.pid}/cmdline").read():
                return proc
        except OSError:
            pass
        time.sleep(0.01)
    return proc


def test_job_runner_runs_jobs_in_priority_order_once_their_needs_are_done(tmp_path):
    st = pipeline.Stages(tmp_path, log=lambda m: None)
    order = []

    def job(name, needs=()):
        return pipeline.Job(name, needs, lambda: st.stage(name, lambda: order.append(name) or {}))
    runner = pipeline.JobRunner(st, process_tag="pytest", poll_s=0.01)
    runner.run_all(lambda: [job("b", ("a",)), job("a"), job("c", ("b",))])
    assert order == ["a", "b", "c"]
    assert not list(tmp_path.glob("train.*.pid")) and not list((tmp_path / ".stages").glob("*.claim"))


def test_a_claim_of_a_live_process_is_respected_and_a_stale_one_taken_over(tmp_path):
    st = pipeline.Stages(tmp_path, log=lambda m: None)
    runner = pipeline.JobRunner(st, process_tag="hat_pipeline_marker")
    other = started("hat_pipeline_marker")
    try:
        (tmp_path / ".stages" / "x.claim").write_text(str(other.pid))
        assert not runner.claim("x")
    finally:
        other.kill()
        other.wait()
    assert runner.claim("x")  # its process is gone
    assert (tmp_path / ".stages" / "x.claim").read_text() == pipeline.process_identity(os.getpid())


def test_a_claim_whose_pid_was_reused_by_another_pipeline_process_is_taken_over(tmp_path):
    """Seen on a new sitting: its workers got the previous sitting's pids, so a claim left behind named a live
    process of the same pipeline. The claim holds the process's start time too; a recycled pid has another."""
    st = pipeline.Stages(tmp_path, log=lambda m: None)
    runner = pipeline.JobRunner(st, process_tag="hat_pipeline_marker")
    other = started("hat_pipeline_marker")
    try:
        pid, start = pipeline.process_identity(other.pid).split()
        (tmp_path / ".stages" / "x.claim").write_text(f"{pid} {start}")
        assert not runner.claim("x")  # its own process still runs
        (tmp_path / ".stages" / "x.claim").write_text(f"{pid} {int(start) - 1}")  # an earlier process's claim
        assert runner.claim("x")
    finally:
        other.kill()
        other.wait()


def settled_state(pid: int, done, timeout_s: float = 5.0) -> str:
    """The process's state letter once ``done(state)`` holds (signals are delivered asynchronously: on a loaded
    machine the stopped process may still read 'R' just after SIGSTOP), or the last one read at the timeout."""
    import time
    deadline = time.monotonic() + timeout_s
    while True:
        state = open(f"/proc/{pid}/stat").read().split(")")[1].split()[0]
        if done(state) or time.monotonic() > deadline:
            return state
        time.sleep(0.01)


def test_others_paused_stops_and_continues_the_other_processes(tmp_path):
    st = pipeline.Stages(tmp_path, log=lambda m: None)
    runner = pipeline.JobRunner(st, process_tag="hat_pipeline_marker")
    other = started("hat_pipeline_marker")
    try:
        (tmp_path / f"train.{other.pid}.pid").write_text(str(other.pid))
        with runner.others_paused() as paused:
            assert paused == [other.pid]
            assert settled_state(other.pid, lambda s: s == "T") == "T"
        assert settled_state(other.pid, lambda s: s != "T") != "T"
    finally:
        other.kill()
        other.wait()


def test_score_bleu_refuses_a_split_without_references(tmp_path, monkeypatch):
    import hat.translate

    class Done:
        refs, hyps = None, ["x"]
    monkeypatch.setattr(hat.translate, "translate_checkpoint", lambda *a, **k: Done())
    with pytest.raises(HatError, match="no target side"):
        pipeline.score_bleu("ck.pt", tmp_path, tmp_path)


def test_processes_share_jobs_and_wait_only_when_none_is_free(tmp_path, monkeypatch):
    """A job claimed by a live process is left to it, a stale claim is taken over, a job waits for the stages it
    needs while the process does the free ones, and the job list is read again after each job."""
    st = pipeline.Stages(tmp_path, log=lambda m: None)
    stages = tmp_path / ".stages"
    runner = pipeline.JobRunner(st, process_tag="hat_pipeline_marker", poll_s=0.01)
    other = started("hat_pipeline_marker")
    try:
        (stages / "job0.claim").write_text(str(other.pid))  # another live process has job0
        (stages / "job1.claim").write_text("999999999")  # a claim left by an interrupted sitting
        ran, polls = [], []

        def job(k, needs=()):
            return pipeline.Job(f"job{k}", needs, lambda: (ran.append(k), (stages / f"job{k}.json").write_text("{}")))

        def sleep(s):
            polls.append(s)
            (stages / "job0.json").write_text("{}")  # meanwhile the other process finishes job0
        monkeypatch.setattr(pipeline.time, "sleep", sleep)
        runner.run_jobs(lambda: [job(3, ("job0",)), job(0), job(1), job(2)] + ([job(4)] if 3 in ran else []))
        assert ran == [1, 2, 3, 4] and len(polls) == 1 and not list(stages.glob("job[1-4].claim"))
    finally:
        other.kill()
        other.wait()


def test_stage_totals_count_every_sitting_from_the_train_logs(tmp_path):
    for sub, rows in (("scratch/a/seed0", [(100, 50.0), (100, 25.0)]), ("supernet_x", [(300, 100.0)])):
        (tmp_path / sub).mkdir(parents=True)
        (tmp_path / sub / "train_log.jsonl").write_text("\n".join(
            [json.dumps({"type": "train", "ntokens": n, "wps": wps}) for n, wps in rows]
            + [json.dumps({"type": "valid", "ntokens": 999})]) + "\n")
    (tmp_path / ".stages").mkdir()
    (tmp_path / ".stages" / "scratch_a_seed0.json").write_text(json.dumps({"seconds": 1.5}))
    assert pipeline.stage_totals(tmp_path) == {"stages": 1, "wall_seconds": 1.5, "train_seconds": 9.0}
