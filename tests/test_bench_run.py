"""bench/run.py's arithmetic: medians and spreads, ratios within a round, the floors table.

The benchmark itself is run by hand (it times things); these check only what it
computes from the figures, so a wrong median or a floor read the wrong way round
cannot slip into the report.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _load_run() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_run", ROOT / "bench" / "run.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


run = _load_run()


def result(key: str, rate: float, p50: float, p99: float, cpu: dict[str, float]) -> object:
    return run.Result(
        key=key,
        label=key,
        url=f"http://127.0.0.1:1/{key}",
        requests_per_s=rate,
        p50_ms=p50,
        p99_ms=p99,
        requests=int(rate * 10),
        non_2xx=0,
        socket_errors={},
        server_cpu_percent=cpu,
        wrk_output="",
        others_cores=0.05,
    )


def test_spread_is_the_median_and_the_range_over_rounds() -> None:
    measured = run.spread([5.0, 1.0, 3.0])
    assert (measured.median, measured.low, measured.high) == (3.0, 1.0, 5.0)
    assert run.spread([2.0, 4.0]).median == 3.0


def test_summarize_leaves_a_figure_out_of_the_rounds_that_lack_it() -> None:
    summary = run.summarize([{"x": 1.0, "y": 10.0}, {"x": 3.0}, {"x": 2.0, "y": 30.0}])
    assert summary["x"].median == 2.0
    assert summary["y"].runs == [10.0, 30.0]
    assert summary["y"].median == 20.0


def test_round_figures_take_ratios_within_the_round_and_the_gateway_cpu_alone() -> None:
    figures = run.round_figures(
        {
            "a": result("a", 10_000, 5.0, 8.0, {"noop": 100.0}),
            "b": result("b", 8_000, 6.0, 12.0, {"gateway": 100.0}),
            "d": result("d", 1_000, 40.0, 100.0, {"upstream": 5.0, "gateway": 25.0}),
            "f": result("f", 20_000, 2.0, 4.0, {"upstream": 50.0, "nginx": 30.0}),
        }
    )
    assert figures["ratio.b/a"] == pytest.approx(0.8)
    assert figures["ratio.d/f"] == pytest.approx(0.05)
    assert "ratio.e/a" not in figures  # (e) did not run
    # 25 % of a core at 1,000 requests/s: 250 us per request, the upstream's 50 not included.
    assert figures["d.cpu_us.gateway"] == pytest.approx(250.0)
    assert figures["d.cpu_us"] == pytest.approx(300.0)
    assert figures["b.p99_over_p50"] == pytest.approx(2.0)
    assert figures["d.p99_over_p50"] == pytest.approx(2.5)


def test_floors_pass_below_and_not_run_read_each_bound_the_right_way() -> None:
    def spread_of(value: float) -> object:
        return run.spread([value])

    summary = {
        "d.cpu_us.gateway": spread_of(301.0),  # at most 300: above is BELOW
        "ratio.d/f": spread_of(0.06),  # at least 0.06: equal passes
        "ratio.b/a": spread_of(0.74),
        "b.p99_over_p50": spread_of(2.9),
    }
    verdicts = {row["figure"]: row["verdict"] for row in run.floor_rows(summary)}
    assert verdicts == {
        "d.cpu_us.gateway": "BELOW",
        "ratio.d/f": "PASS",
        "ratio.e/a": "NOT RUN",
        "ratio.b/a": "BELOW",
        "b.p99_over_p50": "PASS",
        "e.p99_over_p50": "NOT RUN",
        "d.p99_over_p50": "NOT RUN",
    }


def test_a_process_tree_is_the_root_and_every_descendant() -> None:
    parents = {1: 0, 10: 1, 11: 10, 12: 10, 13: 12, 20: 1, 21: 20}
    assert run.descendants(10, parents) == {10, 11, 12, 13}
    table = {pid: (parent, float(pid)) for pid, parent in parents.items()}
    assert run.tree_cpu(12, table) == {12: 12.0, 13: 13.0}


def test_cpu_spent_counts_a_worker_born_during_the_run_whole() -> None:
    assert run.cpu_spent({10: 1.0, 11: 2.0}, {10: 1.5, 11: 2.25, 12: 0.5}) == pytest.approx(1.25)


def test_rounds_alternate_their_order() -> None:
    assert run.round_order(["a", "b", "c"], 0) == ["a", "b", "c"]
    assert run.round_order(["a", "b", "c"], 1) == ["c", "b", "a"]
    assert run.round_order(["a", "b", "c"], 2) == ["a", "b", "c"]


def test_only_selects_scenarios_in_the_standard_order_and_rejects_unknown_ones(
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings, plan = run.parse_args(["--only", "d,b", "--quick", "--repeat", "5"])
    assert plan.keys == ["b", "d"] and plan.repeat == 5
    assert (settings.duration, settings.warmup) == (3, 1)
    with pytest.raises(SystemExit):
        run.parse_args(["--only", "b,z"])
    assert "--only takes some of" in capsys.readouterr().err


@pytest.mark.processes
@pytest.mark.skipif(shutil.which("nginx", path="/usr/sbin:/usr/bin") is None, reason="no nginx")
def test_nginx_accepts_the_config_and_keeps_its_files_in_the_given_directory(
    tmp_path: Path,
) -> None:
    nginx = shutil.which("nginx", path="/usr/sbin:/usr/bin")
    assert nginx is not None
    build = subprocess.run([nginx, "-V"], capture_output=True, text=True).stderr
    conf = tmp_path / "nginx.conf"
    conf.write_text(run.nginx_config(tmp_path, 18001, 18002, build))
    errors = tmp_path / "error.log"
    argv = [nginx, "-t", "-p", str(tmp_path), "-c", str(conf), "-e", str(errors)]
    checked = subprocess.run(argv, capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
    assert "test is successful" in checked.stderr
    # Not nginx's built-in /var/lib/nginx: a user without root can run scenario (f).
    assert (tmp_path / "proxy_temp").is_dir() and (tmp_path / "client_body_temp").is_dir()
