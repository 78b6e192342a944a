"""Secrets in source URLs never reach the screen: a truth table of what is masked."""

from __future__ import annotations

import pytest

from livefaces.redact import redact_url


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("rtsp://cam.local/stream", "rtsp://cam.local/stream"),
        ("rtsp://user:secret@cam.local:554/s", "rtsp://***@cam.local:554/s"),
        ("rtsp://admin:p@ss@cam/x", "rtsp://***@cam/x"),  # an unescaped @ in the password
        ("rtsp://admin:p@s@s@cam/x", "rtsp://***@cam/x"),
        ("RTSP://admin:pw@cam/x", "RTSP://***@cam/x"),
        ("rtsp://admin:a/b@cam/x", "rtsp://***@cam/x"),  # a / in the password
        ("rtsp://token@cam/x", "rtsp://***@cam/x"),
        ("http://cam/video.mjpg?user=admin&pwd=Secr3t", "http://cam/video.mjpg?user=admin&pwd=***"),
        ("http://cam/v?password=a&passwd=b&pass=c", "http://cam/v?password=***&passwd=***&pass=***"),
        (
            "http://cam/v?token=a&access_token=b&api_key=c",
            "http://cam/v?token=***&access_token=***&api_key=***",
        ),
        (
            "http://cam/v?key=a&auth=b&secret=c&signature=d",
            "http://cam/v?key=***&auth=***&secret=***&signature=***",
        ),
        ("http://cam/v?X-Amz-Signature=abc&size=2", "http://cam/v?X-Amz-Signature=***&size=2"),
        ("http://cam/v?author=me&keyframe=2&channel=1", "http://cam/v?author=me&keyframe=2&channel=1"),
        ("http://u:p@cam/v?pwd=x#token=y", "http://***@cam/v?pwd=***#token=***"),
        ("clip.mp4", "clip.mp4"),
        ("0", "0"),
    ],
)
def test_credentials_and_secret_parameters_are_masked(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_redact_text_masks_every_url_inside_a_message() -> None:
    from livefaces.redact import redact_text

    text = "rtsp://admin:p@ss@cam/x: refused; then http://cam2/v.mjpg?user=a&pwd=Secr3t worked"
    assert redact_text(text) == "rtsp://***@cam/x: refused; then http://cam2/v.mjpg?user=a&pwd=*** worked"
