"""What the Hub's documentation says a repo card may hold, for the Hub stand-in (tests/hub_server.py) to refuse
what the Hub refuses. Taken from hub-docs (docs/hub), independently of the code that writes the cards:

- ``spaces-config-reference.md``: a Space's README front matter, "all the accepted parameters", their types and
  their values (``sdk``, ``python_version`` ``3.x`` / ``3.x.x``, colours, ``suggested_hardware`` flavours, the
  ``preload_from_hub`` entry format ``repo``, ``repo f1,f2`` or ``repo f1,f2 COMMIT_SHA``);
- ``repositories-licenses.md``: ``license``, which any repo's card may carry, and its identifiers;
- ``modelcard.md`` (the model-card metadata spec, "validated by the Hub when git pushing"): ``model-index`` entries
  with ``task.type``, ``dataset.type``, ``dataset.name``, and ``metrics`` of ``type`` and ``value``.
"""
from __future__ import annotations

import re

import yaml

COLOURS = ("red", "yellow", "green", "blue", "indigo", "purple", "pink", "gray")
SDKS = ("gradio", "docker", "static")
HARDWARE = ("cpu-basic", "cpu-upgrade", "t4-small", "t4-medium", "l4x1", "l4x4", "l40sx1", "l40sx4", "l40sx8",
            "a10g-small", "a10g-large", "a10g-largex2", "a10g-largex4", "a100-large", "a100x4", "a100x8")
LICENSES = set("""apache-2.0 mit openrail bigscience-openrail-m creativeml-openrail-m bigscience-bloom-rail-1.0
bigcode-openrail-m afl-3.0 artistic-2.0 bsl-1.0 bsd bsd-2-clause bsd-3-clause bsd-3-clause-clear c-uda cc cc0-1.0
cc-by-2.0 cc-by-2.5 cc-by-3.0 cc-by-4.0 cc-by-sa-3.0 cc-by-sa-4.0 cc-by-nc-2.0 cc-by-nc-3.0 cc-by-nc-4.0 cc-by-nd-4.0
cc-by-nc-nd-3.0 cc-by-nc-nd-4.0 cc-by-nc-sa-2.0 cc-by-nc-sa-3.0 cc-by-nc-sa-4.0 cdla-sharing-1.0 cdla-permissive-1.0
cdla-permissive-2.0 wtfpl ecl-2.0 epl-1.0 epl-2.0 etalab-2.0 eupl-1.1 eupl-1.2 agpl-3.0 gfdl gpl gpl-2.0 gpl-3.0 lgpl
lgpl-2.1 lgpl-3.0 isc h-research intel-research lppl-1.3c ms-pl apple-ascl apple-amlr mpl-2.0 odc-by odbl
openmdw-1.0 openmdw-1.1 osl-3.0 postgresql ofl-1.1 ncsa unlicense zlib pddl lgpl-lr deepfloyd-if-license
fair-noncommercial-research-license llama2 llama3 llama3.1 llama3.2 llama3.3 llama4 grok2-community gemma unknown
other""".split())
STR, BOOL, INT, STRS = str, bool, int, "list of strings"
SPACE_KEYS = {  # key -> its type, or the values it may take
    "title": STR, "emoji": STR, "colorFrom": COLOURS, "colorTo": COLOURS, "sdk": SDKS, "python_version": STR,
    "sdk_version": STR, "suggested_hardware": HARDWARE, "suggested_storage": ("small", "medium", "large"),
    "app_file": STR, "app_build_command": STR, "app_port": INT, "base_path": STR, "fullWidth": BOOL,
    "header": ("mini", "default"), "short_description": STR, "models": STRS, "datasets": STRS, "tags": STRS,
    "thumbnail": STR, "pinned": BOOL, "hf_oauth": BOOL, "hf_oauth_scopes": STRS, "hf_oauth_expiration_minutes": INT,
    "hf_oauth_authorized_org": (STR, STRS), "disable_embedding": BOOL, "startup_duration_timeout": STR,
    "custom_headers": dict, "preload_from_hub": STRS,
    "license": LICENSES,  # repositories-licenses.md: any repo's card
}
SHORT_DESCRIPTION_MAX = 60  # the Space settings' limit on the thumbnail's text
COMMIT = re.compile(r"^[0-9a-f]{40}$")


def front_matter(text: str) -> dict:
    """The YAML block at the top of a README (empty when there is none); a ValueError for bad YAML."""
    if not text.startswith("---"):
        return {}
    block = text.split("---", 2)
    if len(block) < 3:
        raise ValueError("the front matter is not closed by ---")
    data = yaml.safe_load(block[1]) or {}
    if not isinstance(data, dict):
        raise ValueError("the front matter is not a mapping")
    return data


def _type_errors(key, value, kind) -> list[str]:
    if kind == STRS:
        ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
    elif isinstance(kind, tuple) and STR in kind:
        ok = isinstance(value, str) or (isinstance(value, list) and all(isinstance(v, str) for v in value))
    elif isinstance(kind, (tuple, set)):
        ok = isinstance(value, str) and value in kind
    elif kind is INT:
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, kind)
    return [] if ok else [f'"{key}" must be {kind if not isinstance(kind, set) else "a licence identifier"}, '
                          f'got {value!r}']


def space_errors(meta: dict, private_repos=frozenset()) -> list[str]:
    """Why the Hub would refuse (or fail to build) a Space with this front matter: nothing when it is fine."""
    errors = [f'"{k}" is not a Space configuration key' for k in meta if k not in SPACE_KEYS]
    for key, value in meta.items():
        if key in SPACE_KEYS:
            errors += _type_errors(key, value, SPACE_KEYS[key])
    if "sdk" not in meta:
        errors.append('"sdk" is required')
    py = meta.get("python_version")
    if isinstance(py, str) and not re.fullmatch(r"3\.\d+(\.\d+)?", py):
        errors.append(f'"python_version" must be 3.x or 3.x.x, got {py!r}')
    if isinstance(meta.get("short_description"), str) and len(meta["short_description"]) > SHORT_DESCRIPTION_MAX:
        errors.append(f'"short_description" is longer than {SHORT_DESCRIPTION_MAX} characters')
    for entry in meta.get("preload_from_hub") or []:
        errors += preload_errors(entry, private_repos)
    return errors


def preload_errors(entry, private_repos=frozenset()) -> list[str]:
    """``repo``, ``repo f1,f2`` or ``repo f1,f2 COMMIT``: the revision, when given, is a commit sha; a private repo
    cannot be preloaded (the config reference's note)."""
    parts = entry.split() if isinstance(entry, str) else []
    if not 1 <= len(parts) <= 3 or parts[0].count("/") != 1:
        return [f"preload_from_hub entry {entry!r}: expected 'repo', 'repo f1,f2' or 'repo f1,f2 commit_sha'"]
    errors = []
    if len(parts) == 3 and not COMMIT.match(parts[2]):
        errors.append(f"preload_from_hub entry {entry!r}: {parts[2]!r} is not a commit sha")
    if parts[0] in private_repos:
        errors.append(f"preload_from_hub entry {entry!r}: private repos cannot be preloaded")
    return errors


def model_errors(meta: dict) -> list[str]:
    """Why the Hub would refuse a model card with this metadata (the parts of the spec the project writes)."""
    errors = []
    if "license" in meta:
        errors += _type_errors("license", meta["license"], LICENSES)
    for key in ("datasets", "tags"):
        if key in meta:
            errors += _type_errors(key, meta[key], STRS)
    index = meta.get("model-index", [])
    if not isinstance(index, list):
        return errors + ['"model-index" must be a list']
    for model in index:
        if not isinstance(model, dict) or not isinstance(model.get("name"), str):
            errors.append("model-index: each entry needs a name")
            continue
        for r in model.get("results") or []:
            task, data, metrics = r.get("task") or {}, r.get("dataset") or {}, r.get("metrics") or []
            if not task.get("type"):
                errors.append("model-index: task.type is required")
            if not data.get("type") or not data.get("name"):
                errors.append("model-index: dataset.type and dataset.name are required")
            if not metrics or any(not m.get("type") or "value" not in m for m in metrics):
                errors.append("model-index: each metric needs a type and a value")
    return errors


def card_errors(text: str, repo_type: str, private_repos=frozenset()) -> list[str]:
    try:
        meta = front_matter(text)
    except (ValueError, yaml.YAMLError) as e:
        return [f"invalid YAML: {e}"]
    if repo_type == "space":
        return space_errors(meta, private_repos)
    return model_errors(meta) if repo_type == "model" else []
