"""xsync: the hybrid synchronizer runtime."""

from xsync.events import Event as Event, EventStep as EventStep  # noqa: E402 - event steps (issue 5)
from xsync.config import Config as Config, ConfigError as ConfigError, load_config as load_config  # noqa: E402 - config (issue 3)
from xsync.orm import Manager as Manager, ModelObject as ModelObject, RelatedManager as RelatedManager  # noqa: E402 - ORM (issue 3)
from xsync.orm import make_model_classes as make_model_classes  # noqa: E402 - ORM (issue 3)
from xsync.connect import ModelAccessor as ModelAccessor, connect as connect  # noqa: E402 - accessor (issue 3)
from xsync.steps import DeferredException as DeferredException, SyncStep as SyncStep  # noqa: E402 - step API (issue 4); "as": exported for mypy --strict (issue 6)
from xsync.engines.sync import PassReport, SyncEngine  # noqa: E402,F401 - sync engine (issue 4)
from xsync.policy import Policy as Policy  # noqa: E402 - model policies (issue 5)
from xsync.pullstep import PullStep as PullStep  # noqa: E402 - pull steps (issue 5)
from xsync.engines.policies import PolicyEngine as PolicyEngine  # noqa: E402 - policy engine (issue 5)
from xsync.engines.pull import PullScheduler as PullScheduler  # noqa: E402 - pull-step scheduler (issue 5)
