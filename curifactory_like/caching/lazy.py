"""``Lazy``: a stage output kept on disk until a stage needs it."""

from __future__ import annotations

from typing import Any


class Lazy:
    """Mark a stage output as lazy: cached right away, dropped from memory, loaded on use.

    In ``outputs=[...]`` a ``Lazy("model")`` is a declaration. Every stage call gets its own
    copy bound to that call's cacher (``bind``), so each record's state holds a handle to its
    own artifact: an aggregate over a lazy output of three records sees three different values.

    Args:
        name: the name of the output in the record state.
        resolve: if ``True`` (default) a stage asking for this input receives the loaded object;
            if ``False`` it receives this handle (use ``.cacher.get_path()`` to pass a path on).
    """

    def __init__(self, name: str, resolve: bool = True):
        self.name = name
        self.cacher: Any = None
        self.resolve = resolve

    def bind(self, cacher: Any) -> Lazy:
        """A fresh handle for one stage call, loading through ``cacher``."""
        handle = type(self).__new__(type(self))
        handle.__dict__.update(self.__dict__)
        handle.cacher = cacher
        return handle

    def load(self) -> Any:
        """Load the artifact through the bound cacher."""
        if self.cacher is None:
            raise RuntimeError(
                f"Lazy('{self.name}') has no cacher bound; it was never produced by a stage "
                "with a cacher for this output"
            )
        from .artifact_lock import artifact_lock

        manager = getattr(getattr(self.cacher, "record", None), "manager", None)
        # the artifact's shared lock from the check to the end of the read (see runtime/loading)
        with artifact_lock(
            getattr(manager, "manager_cache_path", None), [self.cacher.get_path()], exclusive=False
        ):
            problem = self.cacher.integrity_problem(full=True)
            if problem is not None and problem != "artifact missing":
                from ..errors import CacheError

                raise CacheError(
                    f"cached artifact {self.cacher.get_path()} of output '{self.name}' failed its "
                    f"integrity check ({problem}) when loaded on demand; it was not loaded",
                    hint="run again with --overwrite-stage naming the stage that writes it (or "
                    "delete the file) to recompute it",
                )
            return self.cacher.load()

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f'Lazy("{self.name}")'
