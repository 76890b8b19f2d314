"""``awrepro new``: infer a registry entry from a repository, without running its code first.

``analysis`` reads the checkout (declarations, imports, model classes, native code, CUDA-only
code); ``resolve`` turns that into requirements and a date-bounded strategy; ``smoke`` writes
the smoke scripts; ``repair`` reads a failed try's error and proposes one change; ``entry``
writes the result into a registry file with tomlkit.
"""
