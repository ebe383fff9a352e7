import pytest


@pytest.fixture(autouse=True)
def _zh_default(settings):
    settings.LANGUAGE_CODE = "zh-hans"
