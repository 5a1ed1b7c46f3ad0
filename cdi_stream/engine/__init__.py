"""The pure core: case state, facts, deadlines and flags. Nothing here imports Kafka."""

from cdi_stream.engine.config import EngineConfig
from cdi_stream.engine.core import Engine, EngineError, IncidentLimitExceeded, UnknownFlag
from cdi_stream.engine.deadlines import DeadlineIndex, HeapDeadlines
from cdi_stream.engine.state import CaseState
from cdi_stream.engine.store import CaseStore, JsonStore, MemoryStore

__all__ = [
    "CaseState",
    "CaseStore",
    "DeadlineIndex",
    "Engine",
    "EngineConfig",
    "EngineError",
    "HeapDeadlines",
    "IncidentLimitExceeded",
    "JsonStore",
    "MemoryStore",
    "UnknownFlag",
]
