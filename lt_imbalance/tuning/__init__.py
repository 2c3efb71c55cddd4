"""``lt-imbalance tune``: a search (Optuna) over the paper's components and the specialised losses,
each trial a full ``fit``, judged on a validation split, with pruning, resumable storage and a
report that retrains the best recipe and the base for several seeds. See :mod:`.study`."""
