"""The jobs and their plumbing: train, selftest, download, status, why, store; a run's record, devices, GPU slots,
leases."""
