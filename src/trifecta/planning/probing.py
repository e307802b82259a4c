"""The probing study's setup (appendix F, Figure 8), declared once: the probe classifier's training defaults.

`trifecta probe` (analysis/probe.py) takes its options' defaults from here, and the workflow passes the `probe:`
block's values over them (`get_probe_settings` in workflow/rules/common.smk), so a config that leaves one out
probes with the value below. Plain Python, no torch: planning reads it.

A module of its own rather than a block of planning/paper.py: a probe job's code is everything analysis/probe.py
imports, so the catalogue's labels and declarations there would otherwise rerun every probe when edited.
"""

PROBE_DEFAULTS = {
    "epochs": 100,  # probe training epochs, the paper's
    "hidden": 256,  # hidden ReLU units
    "lr": 1e-3,  # Adam learning rate
    "batch_size": 512,  # minibatch of train features
}
