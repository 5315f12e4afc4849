"""The modules behind ``benchmarks/run_bench.py`` (standard library only).

``context`` (paths, commit, machine), ``scenarios`` (what is measured), ``timing`` (running and
timing one command), ``project_state`` (the scratch project's outputs, snapshots, the trash and
the ``best`` check), ``frameworks`` (how each framework is found, set up and launched) and
``results`` (raw samples, rendered as markdown and JSON). See benchmarks/README.md.
"""
