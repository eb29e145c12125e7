"""Task briefs: what an operator is asked to do, and the rights that attach to what is recorded.

A brief names the task and its ordered steps, the license scope and allowed uses of the
recordings, whether a co-resident (someone else in the capture room) must consent too, and the
safety rules version its clips are scored under. Briefs are configured in a JSON file
(ROBOTRACE_TASK_BRIEFS_FILE); without it the shipped example is used.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from robotrace_assets.ids import is_id

EXAMPLE_FILE = Path(__file__).with_name("task_briefs.example.json")
DEFAULT_RULES_VERSION = "v4.2"
_USE_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_RULES_RE = re.compile(r"^v[0-9]+(\.[0-9]+)*$")
_FIELDS = {
    "task_brief_id",
    "tenant_id",
    "task",
    "license",
    "co_resident_consent_required",
    "safety_rules_version",
}


class TaskBriefError(ValueError):
    """A malformed task brief file; the message names the brief and the field."""


class UnknownTaskBrief(LookupError):
    pass


@dataclass(frozen=True)
class TaskBrief:
    task_brief_id: str
    tenant_id: str | None  # None: offered to every tenant
    task_name: str
    steps: tuple[str, ...]
    license_scope_id: str | None
    allowed_use: tuple[str, ...]
    co_resident_consent_required: bool
    safety_rules_version: str

    def license(self) -> dict[str, Any] | None:
        """The envelope's `license` object (null when the brief carries no license scope)."""
        if self.license_scope_id is None:
            return None
        return {"scope_id": self.license_scope_id, "allowed_use": list(self.allowed_use)}

    def task(self) -> dict[str, Any]:
        return {"name": self.task_name, "steps": list(self.steps)}


def _text(value: object, where: str, limit: int = 200) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise TaskBriefError(f"{where} must be a non-empty string of at most {limit} characters")
    return value


def parse_brief(doc: object, index: int) -> TaskBrief:
    where = f"task_briefs[{index}]"
    if not isinstance(doc, dict):
        raise TaskBriefError(f"{where} must be an object")
    unknown = set(doc) - _FIELDS
    if unknown:
        raise TaskBriefError(f"{where} has unknown fields {sorted(unknown)}")
    brief_id = doc.get("task_brief_id")
    if not isinstance(brief_id, str) or not is_id("tb", brief_id):
        raise TaskBriefError(f"{where}.task_brief_id must be tb_<ULID>, got {brief_id!r}")
    tenant = doc.get("tenant_id")
    if tenant is not None and not is_id("ten", tenant):
        raise TaskBriefError(f"{where}.tenant_id must be null or ten_<ULID>, got {tenant!r}")
    task = doc.get("task")
    if not isinstance(task, dict):
        raise TaskBriefError(f"{where}.task must be an object with name and steps")
    steps = task.get("steps", [])
    if not isinstance(steps, list):
        raise TaskBriefError(f"{where}.task.steps must be a list of strings")
    license_ = doc.get("license")
    scope, uses = None, ()
    if license_ is not None:
        if not isinstance(license_, dict) or not is_id("lic", license_.get("scope_id")):
            raise TaskBriefError(f"{where}.license must be null or {{scope_id: lic_<ULID>, ...}}")
        raw_uses = license_.get("allowed_use", [])
        if not isinstance(raw_uses, list) or not all(
            isinstance(u, str) and _USE_RE.match(u) for u in raw_uses
        ):
            raise TaskBriefError(f"{where}.license.allowed_use must be snake_case strings")
        scope, uses = license_["scope_id"], tuple(dict.fromkeys(raw_uses))
    co_resident = doc.get("co_resident_consent_required", False)
    if not isinstance(co_resident, bool):
        raise TaskBriefError(f"{where}.co_resident_consent_required must be true or false")
    rules = doc.get("safety_rules_version", DEFAULT_RULES_VERSION)
    if not isinstance(rules, str) or not _RULES_RE.match(rules):
        raise TaskBriefError(f"{where}.safety_rules_version must look like v4.2, got {rules!r}")
    return TaskBrief(
        task_brief_id=brief_id,
        tenant_id=tenant,
        task_name=_text(task.get("name"), f"{where}.task.name"),
        steps=tuple(_text(s, f"{where}.task.steps[{i}]") for i, s in enumerate(steps)),
        license_scope_id=scope,
        allowed_use=uses,
        co_resident_consent_required=co_resident,
        safety_rules_version=rules,
    )


@dataclass(frozen=True)
class TaskBriefCatalog:
    briefs: dict[str, TaskBrief]

    def get(self, task_brief_id: str, tenant_id: str) -> TaskBrief:
        """The brief, if it is offered to this tenant; otherwise UnknownTaskBrief (a brief of
        another tenant is indistinguishable from one that does not exist)."""
        brief = self.briefs.get(task_brief_id)
        if brief is None or brief.tenant_id not in (None, tenant_id):
            raise UnknownTaskBrief(f"unknown task brief {task_brief_id!r}")
        return brief

    @classmethod
    def parse(cls, text: str, source: str = "task briefs") -> TaskBriefCatalog:
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as error:
            raise TaskBriefError(f"{source} is not valid JSON: {error}") from None
        if not isinstance(doc, dict) or not isinstance(doc.get("task_briefs"), list):
            raise TaskBriefError(f"{source} must be an object with a task_briefs list")
        briefs: dict[str, TaskBrief] = {}
        for index, item in enumerate(doc["task_briefs"]):
            brief = parse_brief(item, index)
            if brief.task_brief_id in briefs:
                raise TaskBriefError(f"{source}: task brief {brief.task_brief_id} appears twice")
            briefs[brief.task_brief_id] = brief
        return cls(briefs)

    @classmethod
    def from_env(cls) -> TaskBriefCatalog:
        path = Path(os.environ.get("ROBOTRACE_TASK_BRIEFS_FILE", "").strip() or EXAMPLE_FILE)
        try:
            text = path.read_text()
        except OSError as error:
            raise TaskBriefError(f"cannot read task briefs file {path}: {error}") from None
        return cls.parse(text, str(path))
