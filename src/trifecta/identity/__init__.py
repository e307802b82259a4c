"""What identifies a run, and a command's code: parsed-code hashes, a run's code identity (the training code it can
execute), data checksums, git state. Reads the package's source; imports only training/."""
