"""Where entries' smoke stages run: here (``local``, the default) or as Slurm jobs (``slurm``).

Every executor gets the same plain data from ``runner``: each entry fetched and set up here
(``runner.Prepared``, holding a ``runner.SmokeJob``), and hands back ``Result``s. ``local``
runs fetch, setup and smoke of an entry in one worker thread, entries in parallel (see
``commands/check.py``); ``slurm`` prepares every entry first, then submits their smoke
stages as a job array and waits for it (``executors/slurm.py``). Another executor
(Kubernetes jobs, a CI matrix) is one more module beside them.
"""

from __future__ import annotations

EXECUTORS = ("local", "slurm")
