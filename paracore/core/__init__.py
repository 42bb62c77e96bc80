"""The pure core: values and functions with no I/O.

Nothing here reads files, the environment, the clock or random state, runs a process or
talks to a scheduler; a test (``tests/test_layers.py``) keeps it that way. The shell
(:mod:`paracore.shell`) and the backends (:mod:`paracore.backends`) do the effects.
"""
