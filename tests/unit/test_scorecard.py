"""The scorecard: Welch intervals computed by hand, verdicts, cells not judged, summary lines and the command."""

import math

import pandas as pd
import pytest

from tests.conftest import write_finished_run
from trifecta.analysis import scorecard, tables

# t quantiles, computed independently (bisection on the t CDF via the regularized incomplete beta function)
T95_DF2 = 0.9 * math.sqrt(2 / 0.19)  # closed form for df = 2: (2p − 1) / sqrt(2p(1 − p)), p = 0.95


def test_t_quantile_for_two_degrees_of_freedom():
    assert T95_DF2 == pytest.approx(2.919985580353726, abs=1e-12)


def test_a_close_cell_with_small_spreads_is_reproduced():
    # ours 75.0 ± 0.5 (n 3) vs paper 75.23 ± 0.65 (n 3)
    a, b = 0.5 ** 2 / 3, 0.65 ** 2 / 3  # 0.0833333, 0.1408333
    se = math.sqrt(a + b)
    df = (a + b) ** 2 / (a ** 2 / 2 + b ** 2 / 2)
    assert se == pytest.approx(0.4734624237, abs=1e-9) and df == pytest.approx(3.7530665699, abs=1e-9)
    t = 2.172793441852417  # t_{0.95, 3.7530665699}
    result = scorecard.verdict(75.0, 0.5, 3, 75.23, 0.65)
    assert result[0] == "reproduced"
    assert result[1:] == pytest.approx((-0.23, -0.23 - t * se, -0.23 + t * se), abs=1e-9)
    assert result[2:] == pytest.approx((-1.2587360492, 0.7987360492), abs=1e-9)


def test_a_clearly_different_cell_is_not_reproduced():
    # ours 60 ± 1: se = sqrt(1/3 + 0.4225/3) = 0.6885976087, df = 3.4340186995, t = 2.2369198757
    assert scorecard.verdict(60.0, 1.0, 3, 75.23, 0.65) == pytest.approx(
        ("not reproduced", -15.23, -16.7703376772, -13.6896623228), abs=1e-9)


def test_a_noisy_close_cell_is_inconclusive():
    # ours 74 ± 3: se = sqrt(3 + 0.4225/3) = 1.7722396377, df = 2.1873648667, t = 2.7563624070
    assert scorecard.verdict(74.0, 3.0, 3, 75.23, 0.65) == pytest.approx(
        ("inconclusive", -1.23, -6.1149347134, 3.6549347134), abs=1e-9)


@pytest.mark.parametrize("paper_std", [None, math.nan])
def test_a_paper_value_without_spread_is_a_constant(paper_std):
    # one-sample interval: se = 0.1 / sqrt(3), df = 2
    half = T95_DF2 * 0.1 / math.sqrt(3)  # 0.1685854
    assert scorecard.verdict(98.0, 0.1, 3, 98.6, paper_std) == pytest.approx(
        ("reproduced", -0.6, -0.6 - half, -0.6 + half), abs=1e-9)
    assert -0.6 - half == pytest.approx(-0.7685854, abs=1e-6)


def test_one_side_without_spread_takes_the_other_sides_degrees_of_freedom():
    half = T95_DF2 * 0.65 / math.sqrt(3)  # df = n_paper − 1 = 2
    assert scorecard.verdict(75.0, 0.0, 3, 75.23, 0.65) == pytest.approx(
        ("reproduced", -0.23, -0.23 - half, -0.23 + half), abs=1e-9)
    half = 2.3533634348018264 * 0.5 / 2  # ours n = 4, paper printed without spread: df = 3
    assert scorecard.verdict(80.0, 0.5, 4, 75.0, None) == pytest.approx(
        ("not reproduced", 5.0, 5.0 - half, 5.0 + half), abs=1e-9)


def test_no_spread_on_either_side_gives_the_point_difference():
    assert scorecard.verdict(75.0, 0.0, 3, 75.5, 0.0) == ("reproduced", -0.5, -0.5, -0.5)
    assert scorecard.verdict(72.0, 0.0, 3, 75.0, None) == ("not reproduced", -3.0, -3.0, -3.0)
    assert scorecard.verdict(77.0, 0.0, 3, 75.0, 0.0)[0] == "inconclusive"  # on the margin itself


def test_the_margin_decides():
    assert scorecard.verdict(74.0, 3.0, 3, 75.23, 0.65, margin=7.0)[0] == "reproduced"
    assert scorecard.verdict(75.0, 0.5, 3, 75.23, 0.65, margin=1.0)[0] == "inconclusive"


def test_a_verdict_needs_a_spread_of_ours():
    with pytest.raises(ValueError, match="spread"):
        scorecard.verdict(75.0, math.nan, 1, 75.23, 0.65)


def cells() -> pd.DataFrame:
    nan = math.nan
    rows = [  # table, row, column, epoch, ours_mean, ours_std, n_seeds, paper_mean, paper_std, stand_in, quoted_from
        ("table1", "OLU+BN", "SymBa (alpha=4)", 100, 75.0, 0.5, 3, "75.23", "0.65", "", ""),
        ("table1", "None", "FTL (tau=2)", 100, 60.0, 1.0, 3, "29.27", "2.49", "", ""),
        ("table1", "BN", "FTL (tau=2)", 100, 40.0, 3.0, 3, "41.02", "1.89", "", ""),
        ("table1", "OLU", "FTL (tau=2)", 100, 48.0, nan, 1, "48.18", "1.87", "", ""),
        ("table2", "VFF/t", "MNIST", 60, 98.0, 0.1, 3, "98.6", "", "", "Hinton (2022)"),
        ("table2", "TFF/s", "MNIST", 10, 97.0, 0.3, 3, "97.44", "0.49", "mnist5k/s@4", ""),
        ("table2", "TFF/s", "CIFAR-10", 10, nan, nan, 0, "50.32", "0.32", "", ""),
        ("table2", "VFF/t", "F-MNIST", 60, 85.0, 0.4, 3, "", "", "", ""),
        ("table2", "FA/f", "CIFAR-100", 100, 23.5, 0.2, 2, "23.00", "0.28", "", ""),
    ]
    return pd.DataFrame(rows, columns=["table", "row", "column", "epoch", "ours_mean", "ours_std", "n_seeds",
                                       "paper_mean", "paper_std", "stand_in", "quoted_from"])


def test_score_judges_what_can_be_judged_and_says_why_not():
    scored = scorecard.score(cells())
    assert list(scored.columns) == scorecard.SCORECARD_COLUMNS
    assert scored["verdict"].tolist() == ["reproduced", "not reproduced", "inconclusive", "", "reproduced", "", "",
                                          "", "reproduced"]
    assert scored["reason"].tolist() == ["", "", "", "1 seed: no spread", "", "stand-in: ours from mnist5k/s@4",
                                         "no value of ours", "no paper value", ""]
    first = scored.iloc[0]
    assert (first["difference"], first["ci_low"], first["ci_high"]) == pytest.approx(
        (-0.23, -1.2587360492, 0.7987360492), abs=1e-9)
    quoted = scored.iloc[4]
    half = T95_DF2 * 0.1 / math.sqrt(3)
    assert (quoted["ci_low"], quoted["ci_high"]) == pytest.approx((-0.6 - half, -0.6 + half), abs=1e-9)
    unjudged = scored[scored["verdict"] == ""]
    assert unjudged["ci_low"].isna().all() and unjudged["ci_high"].isna().all()
    assert unjudged["difference"].tolist()[:2] == pytest.approx([-0.18, -0.44])  # one seed, stand-in: still given
    assert unjudged["difference"].tolist()[2:] == [pytest.approx(math.nan, nan_ok=True)] * 2
    assert scored["paper_mean"].tolist()[-1] == "23.00" and scored["n_seeds"].tolist()[3] == 1


def test_summary_lines_count_judged_cells_and_group_the_rest():
    scored = scorecard.score(cells())
    assert scorecard.summary_line(scored, "table1") == (
        "Table 1: 1 of 3 judged cells reproduced, 1 not, 1 inconclusive (1 cell not judged: 1 with one seed)")
    assert scorecard.summary_line(scored, "table2") == (
        "Table 2: 2 of 2 judged cells reproduced, 0 not, 0 inconclusive "
        "(3 cells not judged: 1 stand-in, 1 without our value, 1 without a paper value)")
    more = scorecard.score(pd.concat([cells()] * 2, ignore_index=True))
    assert scorecard.summary_line(more, "table2").endswith(
        "(6 cells not judged: 2 stand-ins, 2 without our value, 2 without a paper value)")
    assert scorecard.summary_line(scored[scored["verdict"] != ""], "table1") == (
        "Table 1: 1 of 3 judged cells reproduced, 1 not, 1 inconclusive")


def test_markdown_states_the_rule_and_lists_the_judged_cells():
    text = scorecard.to_markdown(scorecard.score(cells()))
    assert "±2.0 pp" in text and "n = 3" in text and "90 % Welch t confidence interval" in text
    assert "- Table 1: 1 of 3 judged cells reproduced" in text and "- Table 2: 2 of 2" in text
    assert "Table 3" not in text
    assert ("| table1 | OLU+BN @ 100 \\| SymBa (α=4) | 75.00 ± 0.50 (n=3) | 75.23 ± 0.65 | −0.23 "
            "| [−1.26, +0.80] | reproduced |") in text
    assert "| table2 | VFF/t @ 60 \\| MNIST | 98.00 ± 0.10 (n=3) | 98.6 | −0.60 | [−0.77, −0.43] | reproduced |" in text
    assert "mnist5k" not in text and "F-MNIST" not in text and "@ 100 \\| FTL (τ=2) | 48.00" not in text
    assert len([line for line in text.splitlines() if line.startswith(("| table1 |", "| table2 |"))]) == 5


def test_main_round_trip(tmp_path, capsys):
    frame = cells()
    paths = []
    for name, part in frame.groupby("table"):
        paths.append(tmp_path / "tables" / f"{name}.csv")
        paths[-1].parent.mkdir(exist_ok=True)
        part.assign(status="ok", reason="").to_csv(paths[-1], index=False)
    out_csv, out_md = tmp_path / "out" / "scorecard.csv", tmp_path / "out" / "scorecard.md"
    assert scorecard.main(["--tables", *map(str, paths), "--out-csv", str(out_csv), "--out-md", str(out_md)]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed == [scorecard.summary_line(scorecard.score(frame), t) for t in ["table1", "table2"]]
    written = pd.read_csv(out_csv, dtype=str, keep_default_na=False)
    assert list(written.columns) == scorecard.SCORECARD_COLUMNS
    assert written["row"].tolist()[1] == "None" and written["paper_mean"].tolist()[-1] == "23.00"
    assert written["verdict"].tolist()[:3] == ["reproduced", "not reproduced", "inconclusive"]
    assert written.loc[0, ["difference", "ci_low", "ci_high"]].tolist() == ["-0.23", "-1.25874", "0.798736"]
    assert out_md.read_text() == scorecard.to_markdown(scorecard.score(frame))


def test_reads_what_trifecta_tables_writes(tmp_path, capsys):
    metrics = [str(write_finished_run(tmp_path, "cifar10", "s", "tff", seed, {100: [acc] * 6}))
               for seed, acc in enumerate([0.745, 0.75, 0.755])]
    assert tables.main(["--metrics", *metrics, "--out-dir", str(tmp_path)]) == 0
    paths = [str(tmp_path / f"table{i}.csv") for i in (1, 2, 3)]
    out_csv, out_md = tmp_path / "scorecard.csv", tmp_path / "scorecard.md"
    capsys.readouterr()
    assert scorecard.main(["--tables", *paths, "--out-csv", str(out_csv), "--out-md", str(out_md)]) == 0
    assert capsys.readouterr().out.splitlines()[0] == (
        "Table 1: 1 of 1 judged cell reproduced, 0 not, 0 inconclusive (11 cells not judged: 11 without our value)")
    scored = pd.read_csv(out_csv, dtype=str, keep_default_na=False)
    tff = scored[(scored["row"] == "OLU+BN") & (scored["column"] == "SymBa (alpha=4)")].iloc[0]
    assert (tff["ours_mean"], tff["ours_std"], tff["paper_mean"], tff["verdict"]) == ("75", "0.5", "75.23", "reproduced")
    assert (scored["paper_mean"] == "23.00").any() and (scored["row"] == "None").sum() == 3
