"""The core never imports torch or a torch engine's library: those live in the engine packages
under workers/, in their own environments. Checked on the source, so an import inside a
function (where the engines keep their heavy imports) counts too."""

from __future__ import annotations

import ast
from pathlib import Path

CORE = Path(__file__).resolve().parents[2] / "voicefarm"
HEAVY = {"torch", "torchaudio", "TTS", "styletts2", "voicefarm_torchkit", "voicefarm_xtts", "voicefarm_styletts2"}


def imported(path: Path) -> set[str]:
    """Top-level names of the modules a file imports, anywhere in it."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_no_core_module_imports_torch_or_an_engine_package() -> None:
    modules = sorted(CORE.rglob("*.py"))
    assert len(modules) > 30
    offenders = {str(p.relative_to(CORE.parent)): sorted(imported(p) & HEAVY) for p in modules}
    assert {p: names for p, names in offenders.items() if names} == {}


def test_the_scan_sees_imports_inside_functions(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def load():\n    import torch.nn\n    from TTS.tts import x\n")
    assert imported(module) == {"torch", "TTS"}
