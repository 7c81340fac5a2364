"""Loading a config: YAML plus ``--set`` overrides, with errors that name the key and list the valid ones."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from teachseg.config.sections import Config
from teachseg.errors import ConfigError


def _valid_keys(model: type[BaseModel]) -> list[str]:
    return sorted(model.model_fields)


def _section_for(loc: tuple[Any, ...]) -> type[BaseModel]:
    model: type[BaseModel] = Config
    for part in loc[:-1]:
        field = model.model_fields.get(str(part))
        ann = getattr(field, "annotation", None) if field else None
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            model = ann
        else:
            break
    return model


def format_validation_error(exc: ValidationError, source: str) -> str:
    """Turn pydantic's error into one readable line per problem."""
    lines = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        key = ".".join(str(p) for p in loc)
        if err["type"] == "extra_forbidden":
            valid = ", ".join(_valid_keys(_section_for(loc)))
            lines.append(f"unknown config key '{key}' (valid keys here: {valid})")
        else:
            msg = err["msg"].removeprefix("Value error, ")
            lines.append(f"'{key}': {msg}")
    return f"{source}: " + "; ".join(lines)


def validation_fixes(exc: ValidationError) -> str | None:
    """The fixes the name checks of :mod:`teachseg.names` attach to their errors (None when there are none)."""
    fixes = [str(err["ctx"]["fix"]) for err in exc.errors() if "fix" in err.get("ctx", {})]
    return "; ".join(dict.fromkeys(fixes)) or None


def parse_override(text: str) -> tuple[list[str], Any]:
    """Parse ``key.sub=value`` (value in YAML syntax) from ``--set``."""
    if "=" not in text:
        raise ConfigError(
            f"--set '{text}' is not of the form key=value", fix="write e.g. --set train.epochs=5"
        )
    key, raw = text.split("=", 1)
    return key.strip().split("."), yaml.safe_load(raw) if raw.strip() else None


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``--set key.sub=value`` overrides to a raw config mapping (in place; also returned)."""
    for text in overrides:
        parts, value = parse_override(text)
        node = data
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = {}
                node[part] = child
            node = child
        node[parts[-1]] = value
    return data


def build_config(
    data: dict[str, Any] | None, source: str = "config", overrides: list[str] | None = None
) -> Config:
    """Validate a raw mapping (plus overrides) into a :class:`Config`.

    Raises:
        ConfigError: one line per problem, prefixed with ``source``, with the fix for unknown names.
    """
    data = apply_overrides(dict(data or {}), overrides or [])
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, source), fix=validation_fixes(exc)) from None


def load_config(path: str | Path | None, overrides: list[str] | None = None) -> Config:
    """Load a YAML config (relative data paths are resolved against the config file's folder)."""
    if path is None:
        return build_config({}, "defaults", overrides)
    path = Path(path)
    if not path.is_file():
        raise ConfigError("config file not found", path=path, fix="check the path, e.g. configs/busi.yaml")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"not valid YAML ({str(exc).splitlines()[0]})", path=path) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", path=path) from None
    except RecursionError:
        raise ConfigError("not valid YAML (nested too deeply)", path=path) from None
    except OSError as exc:
        raise ConfigError(f"cannot read the file ({exc.strerror or exc})", path=path) from None
    if not isinstance(raw, dict):
        raise ConfigError("the config must be a mapping of keys to values", path=path)
    cfg = build_config(raw, str(path), overrides)
    return _resolve_paths(cfg, path.parent)


def _resolve_paths(cfg: Config, base: Path) -> Config:
    def fix(p: Path | None) -> Path | None:
        if p is None or p.is_absolute():
            return p
        # Paths in a config are relative to the working directory when they exist there (the usual case
        # of `teachseg train configs/x.yaml` from the project root), else to the config's folder.
        return p if p.exists() else (base / p)

    cfg.data.root = fix(cfg.data.root)
    cfg.data.unlabelled_dirs = [fix(p) or p for p in cfg.data.unlabelled_dirs]
    cfg.selftrain.teacher_model = fix(cfg.selftrain.teacher_model)
    return cfg
