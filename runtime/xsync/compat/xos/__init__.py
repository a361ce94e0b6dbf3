"""Run XOS synchronizers (`xossynchronizer` 4.x code) on xsync with their Python files unchanged.

`XOSCompat(config, accessor).open()` (done by `xsync run` for every synchronizer) serves the
XOS module names to the synchronizer's code through an import hook and maps them onto
xsync's classes: `SyncStep`, `Policy`, `EventStep`, `PullStep`, the model accessor and model
classes, `xosconfig.Config`, `multistructlog.create_logger`, `xoskafka.XOSKafkaProducer`,
`xosapi.orm`'s convenience wrappers and the ansible helper. See docs/porting-from-xos.md.
"""

from .authoring import EventStep, Policy, PullStep, SyncStep
from .convenience import ORMGenericObjectNotFoundException, ORMWrapper, register_convenience_wrapper
from .logs import KeywordLogger, create_logger
from .session import XOSCompat, XOSCompatError, synchronizer_folder
from .settings import Config

__all__ = [
    "Config",
    "EventStep",
    "KeywordLogger",
    "ORMGenericObjectNotFoundException",
    "ORMWrapper",
    "Policy",
    "PullStep",
    "SyncStep",
    "XOSCompat",
    "XOSCompatError",
    "create_logger",
    "register_convenience_wrapper",
    "synchronizer_folder",
]
