"""Under scripts/sanitize.sh: the tests run against the sanitized build, not the in-place one."""

import os

import pytest

import zoo


@pytest.mark.skipif("libasan" not in os.environ.get("LD_PRELOAD", ""), reason="only under scripts/sanitize.sh")
def test_the_sanitized_extension_is_loaded():
    assert "site-packages" in zoo._C.__file__, zoo._C.__file__
    with open("/proc/self/maps") as maps:
        assert "libasan" in maps.read()
