"""What the workflow plans: the paper's tables and figures (the catalogue), the runs a config describes, their
settings, run ids and time requests. No torch: the rule files read it while planning."""
