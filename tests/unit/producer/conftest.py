"""The ``api`` fixture: a started producer app; ``@pytest.mark.parametrize("api", [{...}], indirect=True)``
overrides settings."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from .apiclient import Api, started_api
from .fakes import FakePublisher


@pytest.fixture
async def api(request: pytest.FixtureRequest) -> AsyncIterator[Api]:
    overrides = getattr(request, "param", {})
    async for started in started_api(overrides, FakePublisher()):
        yield started
