"""Run by the PaddleX reference venv's python: validate saved responses with PaddleX's own pydantic models.

usage: python paddlex_schema_check.py SERVING_DIR RESPONSES.json
RESPONSES.json maps an operation name (buildIndex, addImagesToIndex, removeImagesFromIndex, infer)
to a response body. PaddleX's serving package refuses to import without its serving plugin, so
the two schema files are loaded on their own, under stub parent packages.
"""

import importlib.util
import json
import sys
import types
from pathlib import Path


def load(name: str, path: Path) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def main() -> None:
    serving, responses = Path(sys.argv[1]), json.loads(Path(sys.argv[2]).read_text())
    for name in (
        "px",
        "px.utils",
        "px.inference",
        "px.inference.serving",
        "px.inference.serving.infra",
        "px.inference.serving.schemas",
        "px.inference.serving.schemas.shared",
    ):
        sys.modules[name] = types.ModuleType(name)
        sys.modules[name].__path__ = []
    deps = types.ModuleType("px.utils.deps")
    deps.is_dep_available = lambda name: False
    sys.modules["px.utils.deps"] = deps
    models = load("px.inference.serving.infra.models", serving / "infra" / "models.py")
    load(
        "px.inference.serving.schemas.shared.object_detection",
        serving / "schemas" / "shared" / "object_detection.py",
    )
    schema = load("px.inference.serving.schemas.pp_shituv2", serving / "schemas" / "pp_shituv2.py")
    for operation, body in responses.items():
        _, _, result_model = schema.PRIMARY_OPERATIONS[operation]
        models.AIStudioResultResponse[result_model].model_validate(body)
        print(f"{operation}: valid")


if __name__ == "__main__":
    main()
