"""What runs on the node: importable without the rest of paracore.

Modules here import only the standard library and cloudpickle (and submitit's job
environment, inside a submitit job), so a task's start-up pays for nothing it does not use.
"""
