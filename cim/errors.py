"""Domain errors of the city twin.

Every failure a user can cause derives from :class:`TwinError` and carries enough context
(file, object, site, code) to say what is wrong and where. Only ``api/`` maps them to HTTP
status codes.

::

    TwinError
    ├── SourceError            a source file cannot be read as what it claims to be
    │   └── CRSError           the file has no usable coordinate reference system
    ├── NotFoundError          a site or object code does not exist
    ├── ConflictError          the request contradicts what is stored (e.g. another CRS)
    └── StoreError             the store cannot be opened or written
"""

from __future__ import annotations

from pathlib import Path


class TwinError(Exception):
    """Root of all domain errors."""


class SourceError(TwinError):
    """A source file is malformed; names the file and, where known, the object.

    Parameters
    ----------
    path : path of the offending file
    message : what is wrong
    object_id : the source id of the offending object, if the error is local to one
    """

    def __init__(self, path: str | Path, message: str, object_id: str | None = None) -> None:
        self.path = str(path)
        self.object_id = object_id
        self.reason = message
        where = f"{self.path}" + (f", object {object_id!r}" if object_id is not None else "")
        super().__init__(f"{where}: {message}")


class CRSError(SourceError):
    """The file has no coordinate reference system and none was given, or it is unusable."""


class NotFoundError(TwinError):
    """A site, object or code does not exist in the store."""


class ConflictError(TwinError):
    """The request contradicts what is stored."""


class StoreError(TwinError):
    """The store cannot be opened, migrated or written."""
