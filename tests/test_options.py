"""The option table: command line, config file, names, patterns, precedence and one-line errors."""

from __future__ import annotations

import collections
import re
import subprocess
import sys
from pathlib import Path

import pytest

from livefaces.options import (
    CAMERA_TABLE,
    RUN_TABLE,
    CameraOptions,
    CameraSpec,
    ConfigError,
    RunConfig,
    build_parser,
    derived_name,
    parse_command_line,
)

ROOT = Path(__file__).resolve().parent.parent
SEVERAL = "several cameras would write one file; use a pattern such as"
SIZE = 'must be "WIDTHxHEIGHT" such as "1280x720", or [WIDTH, HEIGHT], got'
THREE = "must be a list of 3 values, each a number >= 0 and <= 1, got"
TRACKS = 'contradicts realtime = true, which tracks faces (detect_every = "auto"); leave one out'
AT_THE_TOP = "at the top of the file, before the first [[cameras]]"
URL = 'must be a camera index, URL, file, folder or "demo", got'


def parse(argv: list[str], environ: dict[str, str] | None = None) -> RunConfig:
    return parse_command_line(argv, environ=environ or {})


def write_config(folder: Path, text: str, name: str = "cameras.toml") -> Path:
    path = folder / name
    path.write_text(text)
    return path


def error_of(argv: list[str], environ: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as caught:
        parse(argv, environ)
    message = str(caught.value)
    assert "\n" not in message
    return message


# The command line alone.


def test_no_arguments_run_demo_with_the_documented_defaults() -> None:
    config = parse([])
    assert config.cameras == (CameraSpec("demo", "demo", CameraOptions()),)
    assert (config.output, config.json_path, config.display, config.device) == (None, None, True, "auto")
    assert (config.codec, config.crf, config.max_frames, config.duration) == ("h264", 23, None, None)
    options = config.cameras[0].options
    assert options.min_face_size == 20 and options.thresholds == (0.6, 0.7, 0.7)
    assert (options.timeout, options.rtsp_transport, options.live, options.detect_every) == (
        10.0,
        "tcp",
        None,
        None,
    )


@pytest.mark.parametrize(
    ("argv", "attribute", "value"),
    [
        (["--no-display"], "display", False),
        (["--max-frames", "5"], "max_frames", 5),
        (["--duration", "2.5"], "duration", 2.5),
        (["--device", "cpu"], "device", "cpu"),
        (["--crf", "0"], "crf", 0),
        (["--codec", "mpeg4"], "codec", "mpeg4"),
        (["-o", "a.mp4"], "output", "a.mp4"),
        (["--json", "-"], "json_path", "-"),
    ],
)
def test_run_options(argv: list[str], attribute: str, value: object) -> None:
    assert getattr(parse(argv), attribute) == value


@pytest.mark.parametrize(
    ("argv", "attribute", "value"),
    [
        (["--detect-every", "3"], "detect_every", 3),
        (["--detect-every", "AUTO"], "detect_every", "auto"),
        (["--realtime"], "realtime", True),
        (["--detect-width", "640"], "detect_width", 640),
        (["--min-face-size", "12"], "min_face_size", 12),
        (["--thresholds", "0.5", "0.6", "1"], "thresholds", (0.5, 0.6, 1.0)),
        (["--min-confidence", "0.9"], "min_confidence", 0.9),
        (["--camera-size", "1280X720"], "camera_size", (1280, 720)),
        (["--camera-fps", "15"], "camera_fps", 15.0),
        (["--rtsp-transport", "udp"], "rtsp_transport", "udp"),
        (["--timeout", "0.1"], "timeout", 0.1),
        (["--stall-timeout", "2.5"], "stall_timeout", 2.5),
        (["--max-reconnects", "0"], "max_reconnects", 0),
        (["--max-reconnects", "7"], "max_reconnects", 7),
        (["--live"], "live", True),
        (["--lossless"], "live", False),
    ],
)
def test_camera_options_apply_to_every_camera(argv: list[str], attribute: str, value: object) -> None:
    config = parse([*argv, "--source", "demo", "--source", "0", "-o", "{name}.mp4"])
    assert [getattr(camera.options, attribute) for camera in config.cameras] == [value, value]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--thresholds", "2", "0.7", "0.7"], "argument --thresholds: must be a number >= 0 and <= 1, got 2"),
        (["--camera-size", "big"],
         "argument --camera-size: expected WIDTHxHEIGHT such as 1280x720, got 'big'"),
        (["--camera-size", "0x5"], "argument --camera-size: width and height must be positive, got '0x5'"),
        (["--min-face-size", "8"], "argument --min-face-size: must be an integer >= 12, got 8"),
        (["--min-face-size", "x"], "argument --min-face-size: must be an integer >= 12, got 'x'"),
        (["--detect-every", "0"], "argument --detect-every: must be \"auto\" or an integer >= 1, got '0'"),
        (["--detect-width", "40"], "argument --detect-width: must be an integer >= 48, got 40"),
        (["--crf", "52"], "argument --crf: must be an integer >= 0 and <= 51, got 52"),
        (["--timeout", "nan"], "argument --timeout: must be a number >= 0.1, got nan"),
        (["--stall-timeout", "0"], "argument --stall-timeout: must be a number >= 0.1, got 0"),
        (["--max-reconnects", "-1"], "argument --max-reconnects: must be an integer >= 0, got -1"),
        (["--device", "tpu"], "argument --device: invalid choice: 'tpu'"),
        (["--live", "--lossless"], "argument --lossless: not allowed with argument --live"),
        (["--bogus"], "unrecognized arguments: --bogus"),
        (["--realtime", "--detect-every", "3"],
         "--realtime tracks faces (--detect-every auto): leave out --detect-every N"),
        (["--source", ""], "--source: the source is empty"),
        (["--source", "front="], "--source front=: no source after the camera's name"),
        (["-o", "rec-{camera}.mp4"],
         "--output rec-{camera}.mp4: unknown placeholder {camera}; the only one is {name}"),
    ],
)  # fmt: skip
def test_command_line_errors_are_one_line(argv: list[str], message: str) -> None:
    assert error_of(argv).startswith(message)


def test_realtime_with_detect_every_auto_is_fine() -> None:
    options = parse(["--realtime", "--detect-every", "auto"]).cameras[0].options
    assert (options.realtime, options.detect_every) == (True, "auto")


# Names.


@pytest.mark.parametrize(
    ("sources", "names", "specs"),
    [
        (["front=rtsp://u:p@cam/x"], ["front"], ["rtsp://u:p@cam/x"]),
        (["rtsp://cam/x?a=b"], ["cam"], ["rtsp://cam/x?a=b"]),
        (["0", "demo"], ["camera0", "demo"], ["0", "demo"]),
        (["rtsp://user:pw@cam1:554/x"], ["cam1"], ["rtsp://user:pw@cam1:554/x"]),
        (["rtsp://admin:p@ss@192.0.2.10/x"], ["192.0.2.10"], ["rtsp://admin:p@ss@192.0.2.10/x"]),
        (["http://[::1]:8080/v.mjpg"], ["1"], ["http://[::1]:8080/v.mjpg"]),
        (["videos/clip.mp4", "photos/"], ["clip", "photos"], ["videos/clip.mp4", "photos/"]),
        (["0", "0", "0"], ["camera0", "camera0-2", "camera0-3"], ["0", "0", "0"]),
        (["rtsp://cam/a", "rtsp://cam/b"], ["cam", "cam-2"], ["rtsp://cam/a", "rtsp://cam/b"]),
        (["demo", "demo=clip.mp4"], ["demo-2", "demo"], ["demo", "clip.mp4"]),
        (["my_cam-1=0"], ["my_cam-1"], ["0"]),
        (["long=http://h/?q=" + "x" * 300], ["long"], ["http://h/?q=" + "x" * 300]),
        (["my clip.mp4"], ["my-clip"], ["my clip.mp4"]),
        (["dir.name=0"], ["dir"], ["dir.name=0"]),  # "." is not in a name prefix: a path
    ],
)
def test_camera_names(sources: list[str], names: list[str], specs: list[str]) -> None:
    argv = [arg for source in sources for arg in ("--source", source)]
    cameras = parse(argv).cameras
    assert [c.name for c in cameras] == names
    assert [c.source for c in cameras] == specs


def test_an_existing_file_with_an_equals_sign_is_a_source_not_a_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "take=2.mp4").write_bytes(b"")
    (camera,) = parse(["--source", "take=2.mp4"]).cameras
    assert (camera.name, camera.source) == ("take-2", "take=2.mp4")


@pytest.mark.parametrize(
    ("spec", "name"), [("/", "source"), ("rtsp://@/", "stream"), (".hidden.mp4", "hidden")]
)
def test_derived_names_are_always_file_name_safe(spec: str, name: str) -> None:
    assert derived_name(spec) == name


def test_explicit_duplicate_names_are_refused() -> None:
    message = error_of(["--source", "a=0", "--source", "a=demo"])
    assert message == "--source a=...: 'a' is already the name of --source a=..."


def test_the_repr_masks_credentials() -> None:
    (camera,) = parse(["--source", "front=rtsp://admin:hunter2@cam/x"]).cameras
    assert "hunter2" not in repr(camera) and "rtsp://***@cam/x" in repr(camera)


# Output patterns.


@pytest.mark.parametrize(
    ("argv", "outputs", "logs"),
    [
        ([], [None], [None]),
        (["-o", "out.mp4", "--json", "f.jsonl"], [Path("out.mp4")], ["f.jsonl"]),
        (["-o", "rec-{name}.mp4"], [Path("rec-demo.mp4")], [None]),
        (["-s", "a=0", "-s", "b=demo", "-o", "{name}/v.mkv", "--json", "-"],
         [Path("a/v.mkv"), Path("b/v.mkv")], ["-", "-"]),
        (["-s", "a=0", "-s", "b=demo", "--json", "j-{name}.jsonl"], [None, None], ["j-a.jsonl", "j-b.jsonl"]),
    ],
)  # fmt: skip
def test_output_patterns(argv: list[str], outputs: list[Path | None], logs: list[str | None]) -> None:
    config = parse(argv)
    assert [config.output_for(c.name) for c in config.cameras] == outputs
    assert [config.json_for(c.name) for c in config.cameras] == logs


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["-o", "out.mp4"], f"--output out.mp4: {SEVERAL} 'out-{{name}}.mp4'"),
        (["--json", "rec/f.jsonl"], f"--json rec/f.jsonl: {SEVERAL} 'rec/f-{{name}}.jsonl'"),
        (["-o", "frames"], f"--output frames: {SEVERAL} 'frames-{{name}}'"),
    ],
)  # fmt: skip
def test_a_plain_path_with_several_cameras_is_refused(argv: list[str], message: str) -> None:
    assert error_of(["--source", "0", "--source", "demo", *argv]) == message


# The config file.

CONFIG = """\
output = "rec-{name}.mp4"
json = "faces-{name}.jsonl"
display = false
min_face_size = 24
camera_size = [1280, 720]

[[cameras]]
name = "front"
url_env = "FRONT_URL"
detect_width = 960

[[cameras]]
url = "0"
min_face_size = 40
thresholds = [0.5, 0.5, 0.9]
"""


def test_a_config_file(tmp_path: Path) -> None:
    path = write_config(tmp_path, CONFIG)
    config = parse(["--config", str(path)], {"FRONT_URL": "rtsp://u:p@192.0.2.10/stream"})
    assert config.config_path == path and config.display is False
    front, desk = config.cameras
    assert (front.name, front.source) == ("front", "rtsp://u:p@192.0.2.10/stream")
    assert (desk.name, desk.source) == ("camera0", "0")
    assert (front.options.min_face_size, front.options.detect_width, front.options.camera_size) == (
        24,
        960,
        (1280, 720),
    )
    assert (desk.options.min_face_size, desk.options.thresholds) == (40, (0.5, 0.5, 0.9))
    assert config.output_for("front") == tmp_path / "rec-front.mp4"  # relative to the file's folder
    assert config.json_for("camera0") == str(tmp_path / "faces-camera0.jsonl")


@pytest.mark.parametrize(
    ("file", "argv", "front", "desk"),
    [
        ("", [], 20, 20),  # built-in default
        ("min_face_size = 24", [], 24, 24),  # the file beats the default
        ("min_face_size = 24", ["--min-face-size", "30"], 30, 30),  # the command line beats the file
        ("min_face_size = 24", ["--min-face-size", "30"], 30, 40),  # a camera's table beats the command line
    ],
)
def test_precedence(tmp_path: Path, file: str, argv: list[str], front: int, desk: int) -> None:
    desk_table = "min_face_size = 40\n" if desk == 40 else ""
    cameras = '[[cameras]]\nname = "front"\nurl = "demo"\n[[cameras]]\nname = "desk"\nurl = "0"\n'
    text = f"{file}\n{cameras}{desk_table}"
    config = parse(["--config", str(write_config(tmp_path, text)), *argv])
    assert [c.options.min_face_size for c in config.cameras] == [front, desk]


def test_run_settings_from_the_command_line_beat_the_file(tmp_path: Path) -> None:
    path = write_config(tmp_path, 'output = "f-{name}.mp4"\ncrf = 30\ndevice = "gpu"\n')
    config = parse(["--config", str(path), "-o", "cli-{name}.mp4", "--crf", "18"])
    assert (config.output, config.crf, config.device) == ("cli-{name}.mp4", 18, "gpu")


def test_file_cameras_come_first_then_the_command_line(tmp_path: Path) -> None:
    path = write_config(tmp_path, '[[cameras]]\nname = "front"\nurl = "demo"\n')
    config = parse(["--config", str(path), "--source", "0", "--source", "demo"])
    assert [c.name for c in config.cameras] == ["front", "camera0", "demo"]


def test_a_file_without_cameras_uses_the_command_line_or_demo(tmp_path: Path) -> None:
    path = write_config(tmp_path, "min_face_size = 30\n")
    assert [c.name for c in parse(["--config", str(path)]).cameras] == ["demo"]
    assert [c.source for c in parse(["--config", str(path), "-s", "0"]).cameras] == ["0"]


@pytest.mark.parametrize(
    ("text", "layer"),
    [
        ('realtime = true\n[[cameras]]\nurl = "demo"\ndetect_every = 3\n', "table wins: every 3"),
        ('detect_every = 3\n[[cameras]]\nurl = "demo"\nrealtime = true\n', "table wins: realtime"),
    ],
)
def test_realtime_and_detect_every_at_different_levels_the_specific_wins(
    tmp_path: Path, text: str, layer: str
) -> None:
    options = parse(["--config", str(write_config(tmp_path, text))]).cameras[0].options
    expected = (False, 3) if layer.endswith("every 3") else (True, None)
    assert (options.realtime, options.detect_every) == expected


def test_file_paths_and_urls(tmp_path: Path) -> None:
    text = '[[cameras]]\nurl = "clips/a.mp4"\n[[cameras]]\nurl = "/abs/b.mp4"\n[[cameras]]\nurl = 2\n'
    config = parse(["--config", str(write_config(tmp_path, text)), "--json", "-"])
    assert [c.source for c in config.cameras] == [str(tmp_path / "clips/a.mp4"), "/abs/b.mp4", "2"]
    assert [c.name for c in config.cameras] == ["a", "b", "camera2"]


# Errors in the file: one line naming the file, the key and the problem.

FILE_ERRORS = [
    ('[[cameras]]\nurl = "0"\n[[cameras]]\nurl = "demo"\nmin_face_size = 8\n',
     "cameras[1].min_face_size: must be an integer >= 12, got 8"),
    ('min_face_size = "24"\n', 'min_face_size: must be an integer >= 12, got "24"'),
    ("min_face_size = true\n", "min_face_size: must be an integer >= 12, got true"),
    ("thresholds = [0.6, 0.7]\n", f"thresholds: {THREE} [0.6, 0.7]"),
    ("thresholds = [0.6, 2, 0.7]\n", f"thresholds: {THREE} [0.6, 2, 0.7]"),
    ('camera_size = "big"\n', f'camera_size: {SIZE} "big"'),
    ("camera_size = [0, 720]\n", f"camera_size: {SIZE} [0, 720]"),
    ('detect_every = "often"\n', 'detect_every: must be "auto" or an integer >= 1, got "often"'),
    ('rtsp_transport = "http"\n', 'rtsp_transport: must be one of "tcp", "udp", got "http"'),
    ('device = "tpu"\n', 'device: must be one of "auto", "cpu", "gpu", got "tpu"'),
    ('live = "yes"\n', 'live: must be true or false, got "yes"'),
    ("output = 5\n", "output: must be a non-empty string, got 5"),
    ("crf = 60\n", "crf: must be an integer >= 0 and <= 51, got 60"),
    ("timeout = 0\n", "timeout: must be a number >= 0.1, got 0"),
    ("max_reconnects = 1.5\n", "max_reconnects: must be an integer >= 0, got 1.5"),
    ('output = "x-{camera}.mp4"\n', "output: unknown placeholder {camera}; the only one is {name}"),
    ('json = "f.jsonl"\n[[cameras]]\nurl = "0"\n[[cameras]]\nurl = "demo"\n',
     "json: several cameras would write one file; use a pattern such as '{d}/f-{name}.jsonl'"),
    ("realtime = true\ndetect_every = 3\n",
     f"detect_every: 3 {TRACKS}"),
    ('[[cameras]]\nurl = "0"\nrealtime = true\ndetect_every = 2\n',
     f"cameras[0].detect_every: 2 {TRACKS}"),
    ("min_face = 24\n", "min_face: unknown key (did you mean min_face_size?)"),
    ("min-face-size = 24\n", "min-face-size: unknown key (did you mean min_face_size?)"),
    ('[[cameras]]\nurl = "0"\ndetect_widht = 640\n',
     "cameras[0].detect_widht: unknown key (did you mean detect_width?)"),
    ('[[cameras]]\nurl = "0"\nnmae = "a"\n', "cameras[0].nmae: unknown key (did you mean name?)"),
    ('[[cameras]]\nurl = "0"\ncolour = "red"\n', "cameras[0].colour: unknown key"),
    ("[detection]\nmin_face_size = 24\n", f"detection: unknown key (settings go {AT_THE_TOP})"),
    ('url = "0"\n', "url: unknown key here: it belongs in a [[cameras]] table"),
    ('[[cameras]]\nurl = "0"\noutput = "a.mp4"\n',
     f"cameras[0].output: applies to the whole run; set it {AT_THE_TOP}"),
    ('[cameras]\nurl = "0"\n', "cameras: must be a list of tables, written [[cameras]]"),
    ("cameras = [1]\n", "cameras[0]: must be a table, written [[cameras]] with url = ..."),
    ('[[cameras]]\nname = "a"\n', "cameras[0]: needs url, url_env or url_file"),
    ('[[cameras]]\nurl = "0"\nurl_env = "X"\n',
     "cameras[0]: give one of url, url_env, url_file, not url and url_env"),
    ('[[cameras]]\nurl = ""\n', f"cameras[0].url: {URL} "),
    ('[[cameras]]\nurl = [1]\n', f"cameras[0].url: {URL} [1]"),
    ('[[cameras]]\nurl_env = "NOT_SET_ANYWHERE"\n',
     "cameras[0].url_env: environment variable NOT_SET_ANYWHERE is not set"),
    ('[[cameras]]\nurl_env = "EMPTY"\n', "cameras[0].url_env: environment variable EMPTY is empty"),
    ("[[cameras]]\nurl_env = 3\n", "cameras[0].url_env: must be the name of an environment variable"),
    ('[[cameras]]\nname = "a b"\nurl = "0"\n',
     "cameras[0].name: must be letters, digits, '_', '.' or '-' (it goes into file names), "
     "not starting with '.' or '-', got \"a b\""),
    ('[[cameras]]\nname = ".."\nurl = "0"\n', "cameras[0].name: must be letters, digits"),
    ('[[cameras]]\nname = "a"\nurl = "0"\n[[cameras]]\nname = "a"\nurl = "demo"\n',
     "cameras[1].name: 'a' is already the name of {d}/cameras.toml: cameras[0]"),
    ("min_face_size = \n", "not valid TOML: Invalid value (at line 1, column 17)"),
    ('[[cameras]]\nurl = "0"\n[[cameras]\n', "not valid TOML: "),
]  # fmt: skip


@pytest.mark.parametrize(("text", "problem"), FILE_ERRORS)
def test_file_errors_name_the_file_the_key_and_the_problem(tmp_path: Path, text: str, problem: str) -> None:
    path = write_config(tmp_path, text)
    message = error_of(["--config", str(path)], {"EMPTY": " "})
    assert message.startswith(f"{path}: {problem.replace('{d}', str(tmp_path))}")


def test_a_toml_syntax_error_gives_its_line(tmp_path: Path) -> None:
    path = write_config(tmp_path, 'display = false\n\n[[cameras]\nurl = "0"\n')
    assert re.fullmatch(
        rf"{re.escape(str(path))}: not valid TOML: .*\(at line 3, column \d+\)",
        error_of(["--config", str(path)]),
    )


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (lambda d: d / "missing.toml", "no such file"),
        (lambda d: d, "is a folder, the config must be a file"),
    ],
)
def test_unreadable_config_files(tmp_path: Path, make, problem: str) -> None:
    path = make(tmp_path)
    assert error_of(["--config", str(path)]) == f"{path}: {problem}"


def test_a_config_file_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'name = "caf\xe9"\n')
    assert error_of(["--config", str(path)]) == f"{path}: not UTF-8 text"


def test_url_env_never_shows_the_secret(tmp_path: Path) -> None:
    path = write_config(tmp_path, '[[cameras]]\nurl_env = "CAM"\n[[cameras]]\nurl = "0"\n')
    secret = "rtsp://admin:hunter2@cam1/x?token=abc"
    config = parse(["--config", str(path)], {"CAM": secret})
    assert config.cameras[0].source == secret and config.cameras[0].name == "cam1"
    message = error_of(["--config", str(path), "-o", "one.mp4"], {"CAM": secret})
    assert "hunter2" not in message and "abc" not in message and repr(config).count("hunter2") == 0


def test_url_file_reads_a_secrets_file_and_never_shows_it(tmp_path: Path) -> None:
    secret = "rtsp://admin:hunter2@cam1/x"
    (tmp_path / "front.url").write_text(f"\n  {secret}  \nignored\n")
    path = write_config(tmp_path, '[[cameras]]\nname = "front"\nurl_file = "front.url"\n')
    config = parse(["--config", str(path)])
    assert config.cameras[0].source == secret and "hunter2" not in repr(config)
    (tmp_path / "empty.url").write_text("\n \n")
    for name, problem in (("empty.url", "is empty"), ("missing.url", "does not exist")):
        path = write_config(tmp_path, f'[[cameras]]\nurl_file = "{name}"\n')
        assert (
            error_of(["--config", str(path)]) == f"{path}: cameras[0].url_file: {tmp_path / name} {problem}"
        )
    (tmp_path / "binary.url").write_bytes(b"\xff\xfehunter2")
    path = write_config(tmp_path, '[[cameras]]\nurl_file = "binary.url"\n')
    message = error_of(["--config", str(path)])
    assert message.endswith("binary.url: not readable text") and "hunter2" not in message


# The table drives the parser and the help.


def test_the_help_lists_every_option_once() -> None:
    text = build_parser().format_help()
    options = text.split("\noptions:", 1)[1]
    listed = []
    for line in options.splitlines():
        if line.startswith("  -"):
            invocation = re.split(r"\s{2,}", line.strip(), maxsplit=1)[0]
            listed += [part.split(" ", 1)[0] for part in invocation.split(", ")]
    expected = ["-h", "--help", "-s", "--source", "--config"]
    for entry in (*RUN_TABLE, *CAMERA_TABLE):
        expected += [*entry.flags, *entry.option.off]
    assert collections.Counter(listed) == collections.Counter(expected)


def test_the_help_shows_real_defaults_only() -> None:
    text = " ".join(build_parser().format_help().split())
    for shown in (
        "(default: 20)",
        "(default: 0.6 0.7 0.7)",
        "(default: h264)",
        "(default: 23)",
        "(default: demo)",
    ):
        assert shown in text
    assert "(default: None)" not in text and "(default: False)" not in text and "(default: True)" not in text


def test_every_camera_option_is_a_config_key_and_a_field() -> None:
    names = {f for f in CameraOptions.__dataclass_fields__}
    assert {entry.name for entry in CAMERA_TABLE} == names
    assert {entry.key for entry in RUN_TABLE} == {
        "output",
        "json",
        "events",
        "snapshots",
        "snapshot_limit",
        "keep_days",
        "max_disk",
        "save_faces",
        "margin",
        "face_size",
        "align",
        "face_format",
        "save_every",
        "display",
        "max_frames",
        "duration",
        "device",
        "codec",
        "crf",
        "preset",
        "segment_time",
        "anonymize",
        "mask_scale",
        "mask_shape",
        "mask_hold",
        "window_boxes",
        "metrics",
        "log_file",
        "mqtt",
        "mqtt_env",
        "mqtt_file",
        "http",
        "http_token",
        "http_token_env",
        "http_token_file",
        "ray",
        "ray_detectors",
        "ray_camera_cpus",
        "ray_detector_cpus",
        "ray_detector_gpus",
    }


def test_reconnection_by_default_forever_with_a_five_second_stall_timeout() -> None:
    options = parse(["--source", "rtsp://cam/x"]).cameras[0].options
    assert options.reconnect_settings().max_reconnects is None
    assert options.capture_settings().read_timeout == 5.0  # a stall is the stream's read timeout
    assert options.capture_settings().open_timeout == 10.0
    tuned = parse(["--max-reconnects", "3", "--stall-timeout", "0.5"]).cameras[0].options
    assert (tuned.reconnect_settings().max_reconnects, tuned.capture_settings().read_timeout) == (3, 0.5)


def test_reconnection_is_set_per_camera_in_the_config_file(tmp_path: Path) -> None:
    path = tmp_path / "cameras.toml"
    path.write_text(
        'max_reconnects = 5\n[[cameras]]\nurl = "rtsp://a/x"\n'
        '[[cameras]]\nurl = "rtsp://b/x"\nmax_reconnects = 0\nstall_timeout = 2\n'
    )
    first, second = (camera.options for camera in parse(["--config", str(path)]).cameras)
    assert (first.max_reconnects, first.stall_timeout) == (5, 5.0)
    assert (second.max_reconnects, second.stall_timeout) == (0, 2.0)


def test_capture_settings_from_camera_options() -> None:
    settings = CameraOptions(camera_size=(320, 240), timeout=3.0, live=False).capture_settings()
    assert (settings.demo_size, settings.demo_fps, settings.open_timeout, settings.live) == (
        (320, 240),
        30.0,
        3.0,
        False,
    )


def test_importing_options_loads_no_tensorflow_opencv_or_pyav() -> None:
    code = (
        "import sys, livefaces.options as o; o.parse_command_line(['--source', 'x=0']); "
        "print([m for m in ('tensorflow', 'cv2', 'av') if m in sys.modules])"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


WEB_TOKEN = "s3cret-token-for-the-web-123"


def test_http_binds_to_loopback_unless_told_and_its_token_has_three_forms(tmp_path: Path) -> None:
    assert parse(["--http", "8080"]).http == ("127.0.0.1", 8080)
    assert parse(["--http", "0.0.0.0:8080"]).http == ("0.0.0.0", 8080)
    secret = tmp_path / "token"
    secret.write_text(f"\n{WEB_TOKEN}\n")
    given = [
        parse(["--http-token", WEB_TOKEN]),
        parse(["--http-token-env", "WEB"], {"WEB": WEB_TOKEN}),
        parse(["--http-token-file", str(secret)]),
    ]
    for config in given:
        assert config.http_token is not None and config.http_token.text == WEB_TOKEN
        assert WEB_TOKEN not in repr(config)


@pytest.mark.parametrize(
    ("argv", "environ", "words"),
    [
        (["--http-token", "short"], {}, "under 16 characters"),
        (["--http-token-env", "WEB"], {"WEB": "has spaces in it, too many"}, "spaces"),
        (["--http-token-env", "WEB"], {}, "environment variable WEB is not set"),
        (["--http-token", WEB_TOKEN, "--http-token-env", "WEB"], {"WEB": WEB_TOKEN}, "give only one of"),
        (["--http", "host:port"], {}, "PORT or HOST:PORT"),
    ],
)
def test_bad_http_settings_are_one_line_without_the_token(
    argv: list[str], environ: dict[str, str], words: str
) -> None:
    with pytest.raises(ConfigError, match=words) as caught:
        parse(argv, environ)
    assert WEB_TOKEN not in str(caught.value) and "has spaces" not in str(caught.value)
