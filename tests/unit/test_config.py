"""Settings: parsing, validation and the errors a user sees."""

import pytest

from trifecta.config import ConfigError, build_config, config_from_dict


def test_defaults_follow_appendix_c():
    cfg = build_config()
    assert (cfg.batch_size, cfg.alpha, cfg.tau, cfg.lr_at(0)) == (512, 4.0, 2.0, 1e-3)
    assert cfg.eval_epochs == [cfg.epochs]


def test_overrides_and_schedule():
    cfg = build_config(overrides=["epochs=200", "eval_epochs=10,100", "lr_schedule=0:1e-3,150:1e-4",
                                  "width=0.5", "augment=false"])
    assert cfg.eval_epochs == [10, 100, 200]
    assert (cfg.lr_at(0), cfg.lr_at(149), cfg.lr_at(150), cfg.lr_at(199)) == (1e-3, 1e-3, 1e-4, 1e-4)
    assert cfg.width == 0.5 and cfg.augment is False
    assert config_from_dict(cfg.to_dict()) == cfg


def test_yaml_file_then_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("epochs: 500\nlr_schedule: [[0, 1.0e-3], [200, 5.0e-4], [400, 1.0e-4]]\n")
    cfg = build_config(path, ["epochs=450"])
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
    with pytest.raises(ConfigError, match=message):
        build_config(overrides=[override])


def test_bad_yaml_key(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("batchsize: 3\n")
    with pytest.raises(ConfigError, match="unknown setting 'batchsize'"):
        build_config(path)
