"""microjourney: customer-experience analytics at the level of micro-moments.

>>> import microjourney as mj                  # doctest: +SKIP
>>> ws = mj.open("build/demo")                 # doctest: +SKIP
>>> ws.scorecard().to_pandas()                 # doctest: +SKIP
"""

from .client import Client
from .errors import IngestError, MicrojourneyError, QueryError, SpecError, WorkspaceError
from .workspace import IngestResult, Workspace, init, open

__version__ = "0.1.0.dev0"

__all__ = [
    "Client",
    "IngestError",
    "IngestResult",
    "MicrojourneyError",
    "QueryError",
    "SpecError",
    "Workspace",
    "WorkspaceError",
    "__version__",
    "init",
    "open",
]
