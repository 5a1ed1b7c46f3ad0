from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def settings_variables() -> set[str]:
    """Every CDI_* variable the worker reads (from cdi_stream.settings)."""
    from cdi_stream.settings import Settings, env_name

    return {env_name(field) for field in Settings.model_fields}
