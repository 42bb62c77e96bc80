"""The shell: submission, handles, waiting, configuration files, the pilot, the session.

Everything here may do I/O, but only through the current
:class:`~paracore.shell.session.Session` and its backends.
"""
