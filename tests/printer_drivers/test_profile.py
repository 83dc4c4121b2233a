"""Profile lookup errors are short and helpful: they end up in a job's reason."""

from __future__ import annotations

import pytest

from printer_drivers import RenderError, RenderProfile, UnsupportedEncodingError


@pytest.mark.parametrize(
    ("profile", "encoding", "error", "says"),
    [
        ("TM-T88X", "gb18030", RenderError, "did you mean 'TM-T88V'"),
        ("Bogus-" + "x" * 58, "gb18030", RenderError, "e.g. 'default'"),
        ("default", "cp4377", UnsupportedEncodingError, "did you mean 'cp437'"),
        ("TM-T88V", "koi8_r", UnsupportedEncodingError, "e.g. 'gb18030'"),
    ],
)
def test_lookup_errors_are_short(
    profile: str, encoding: str, error: type[Exception], says: str
) -> None:
    with pytest.raises(error) as caught:
        RenderProfile.build(profile, 80, encoding)
    text = str(caught.value)
    assert says in text and "known)" in text
    assert len(text) <= 140, text
