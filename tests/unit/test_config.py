"""Settings: parsing, validation and the errors a user sees."""

import dataclasses

import pytest

from trifecta.planning.settings_help import settings_help
from trifecta.training.settings import FIELDS, SettingsError, Settings, build_settings, settings_from_dict


def test_defaults_follow_appendix_c():
    cfg = build_settings()
    assert (cfg.batch_size, cfg.alpha, cfg.tau, cfg.lr_at(0)) == (512, 4.0, 2.0, 1e-3)
    assert cfg.eval_epochs == [cfg.epochs]


def test_overrides_and_schedule():
    cfg = build_settings(overrides=["epochs=200", "eval_epochs=10,100", "lr_schedule=0:1e-3,150:1e-4",
                                  "width=0.5", "augment=false"])
    assert cfg.eval_epochs == [10, 100, 200]
    assert (cfg.lr_at(0), cfg.lr_at(149), cfg.lr_at(150), cfg.lr_at(199)) == (1e-3, 1e-3, 1e-4, 1e-4)
    assert cfg.width == 0.5 and cfg.augment is False
    assert settings_from_dict(cfg.to_dict()) == cfg


def test_yaml_file_then_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("epochs: 500\nlr_schedule: [[0, 1.0e-3], [200, 5.0e-4], [400, 1.0e-4]]\n")
    cfg = build_settings(path, ["epochs=450"])
    assert cfg.epochs == 450 and cfg.lr_at(450 - 1) == 1e-4


@pytest.mark.parametrize("override,message", [
    ("epoch=3", "unknown setting 'epoch'"),
    ("epochs=ten", "epochs='ten' is malformed"),
    ("epochs=2.5", "epochs='2.5' is malformed"),
    ("augment=maybe", "augment='maybe' is malformed"),
    ("lr_schedule=1e-3", "lr_schedule='1e-3' is malformed"),
    ("lr_schedule=5:1e-3", "must start at epoch 0"),
    ("eval_epochs=0", "eval_epochs"),
    ("width=0", "width=0.0 must be > 0"),
    ("epochs", "expects key=value"),
])
def test_bad_settings_name_the_problem(override, message):
    with pytest.raises(SettingsError, match=message):
        build_settings(overrides=[override])


def test_bad_yaml_key(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("batchsize: 3\n")
    with pytest.raises(SettingsError, match="unknown setting 'batchsize'"):
        build_settings(path)


def test_a_baselines_source_sets_its_defaults_and_settings_still_win():
    pep = build_settings(algo="pep", dataset="cifar10")
    assert (pep.batch_size, pep.augment, pep.init, pep.lr_schedule) == (
        64, False, "kaiming_relu", [(0, 0.01), (60, 0.001), (90, 0.0001)])
    assert build_settings(algo="pep", dataset="mnist5k").lr_at(0) == 0.1  # the source's MNIST rates
    assert build_settings(overrides=["batch_size=32", "augment=true"], algo="pep").batch_size == 32
    for algo in ("tff", "vff", "symba-ln", "bp", "fa"):  # appendix C and the released code
        cfg = build_settings(algo=algo, dataset="cifar10")
        assert (cfg.batch_size, cfg.augment, cfg.init, cfg.lr_schedule) == (512, True, "pytorch", [(0, 1e-3)])


def test_help_lists_every_setting_with_its_default():
    text = settings_help()
    for f in dataclasses.fields(Settings):
        assert f"  {f.name}=" in text
    assert "batch_size=512 " in text and "init=pytorch " in text and "eval_epochs=None " in text
    assert "pep: batch_size=64 lr_schedule=0:0.01,60:0.001,90:0.0001 augment=false" in text


def test_an_unknown_setting_lists_the_valid_ones():
    with pytest.raises(SettingsError) as err:
        build_settings(overrides=["lr=0.1"])
    assert err.value.why == f"no such setting; valid settings: {', '.join(sorted(FIELDS))}"


def test_the_numeric_recipes_are_the_precision_settings_choices():
    from trifecta.training.recipe import PRECISIONS
    assert PRECISIONS == FIELDS["precision"].metadata["rules"]["choices"] == ("auto", "bf16", "fp16", "fp32")


@pytest.mark.parametrize("override,message", [
    ("init=he", "init='he' must be one of pytorch, kaiming_relu"),
    ("layer_norm=affine", "must be one of rms, pytorch"),
    ("label_matrix=yes", "must be one of auto, learned, fixed"),
    ("width=true", "width='true' is malformed"),
])
def test_choice_and_number_settings_name_the_problem(override, message):
    with pytest.raises(SettingsError, match=message):
        build_settings(overrides=[override])


@pytest.mark.parametrize("override", ["lr_schedule=0:inf", "lr_schedule=0:1e-3,10:nan", "tau=nan", "alpha=inf",
                                      "momentum=nan", "width=inf", "dropout=-inf"])
def test_non_finite_numbers_are_refused_naming_key_and_value(override):
    key, value = override.split("=")
    with pytest.raises(SettingsError, match=f"setting {key}='{value}' is malformed: expected a finite number"):
        build_settings(overrides=[override])


def test_a_yaml_syntax_error_names_the_file_and_line(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("epochs: 5\nwidth: [0.5\nbatch_size: 64\n")
    with pytest.raises(SettingsError, match=rf"{path}, line 3, column \d+: not valid YAML: "):
        build_settings(path)
